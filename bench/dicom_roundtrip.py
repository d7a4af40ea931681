"""The issue's target, end to end: a study of 248 instances sent by dcmtk's `storescu` to
`manage.py dicom_listener` is taken in, analysed by a real Celery worker, and its SR and
overlays land in a real PACS (Debian's Orthanc), none lost or duplicated.

    .venv/bin/python -m bench.dicom_roundtrip [--instances 248] [--series 4] [--quiet 5] [--model cnn]

The stack is bench/_stack.py's (its own folder var/bench-roundtrip/, SQLite unless
BENCH_DATABASE_URL, a private redis-server, one worker like worker-gpu that also takes the
`outbound` queue), plus the listener as its own process (BRAINAI_DICOM_STUDY_QUIET_S =
--quiet) and Orthanc started by tests/pacs.py as the C-STORE destination. The study is
bench/dicom_listener.py's: the dataset's slices (tests.builders.brain_jpegs, `glioma`;
phantoms without the dataset) as 16-bit 256 px MR instances, split over --series series.

It prints: instances sent / received / duplicates / taken in; scans by status; seconds
from the first instance sent to the study taken in, to the finding and to
`awaiting_review`; the SR and overlay instances found in Orthanc (its REST API) and the
source instances the SR references; then the lost and duplicated counts, and one JSON line
last. Figures, never pass/fail on time; it exits non-zero if something never arrives.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import _stack  # noqa: E402

_stack.WORK = _stack.ROOT / "var" / "bench-roundtrip"
SENDER = "BENCH"
SR_CLASS = "1.2.840.10008.5.1.4.1.1.88.34"
SC_CLASS = "1.2.840.10008.5.1.4.1.1.7"


def build_study(folder: Path, n: int, series: int, study_uid: str, size: int = 256) -> list[Path]:
    """``n`` MR instances of one study over ``series`` series, from the dataset's slices, as files."""
    import io

    import numpy as np
    from PIL import Image

    from tests.builders import brain_jpegs, dicom_bytes

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, data in enumerate(brain_jpegs(n, "glioma")):
        s = i * series // n + 1  # contiguous blocks of slices per series
        pixels = np.asarray(Image.open(io.BytesIO(data)).convert("L").resize((size, size)), dtype=np.uint8)
        path = folder / f"IM{i:04d}.dcm"
        path.write_bytes(dicom_bytes(patient_id="BENCH-RT", study_uid=study_uid, series_uid=f"{study_uid}.{s}",
                                     sop_uid=f"{study_uid}.{s}.{i + 1}", instance_number=i + 1, pixels=pixels))
        paths.append(path)
    return paths


def start_listener(env: dict) -> tuple[subprocess.Popen, int]:
    log = open(_stack.WORK / "listener.log", "wb")
    proc = subprocess.Popen([_stack.PY, "manage.py", "dicom_listener", "--port", "0"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=log, text=True)
    _stack._procs.append(proc)
    line = proc.stdout.readline()  # "DICOM listener BRAINAI on 127.0.0.1:PORT (study quiet period ...)"
    found = re.search(r":(\d+) ", line)
    if not found:
        sys.exit(f"the listener did not start: {line!r}; see {_stack.WORK / 'listener.log'}")
    return proc, int(found.group(1))


def wait(predicate, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value, time.monotonic()
        time.sleep(interval)
    sys.exit(f"gave up after {timeout:.0f} s waiting for {what}; logs in {_stack.WORK}")


def referenced_uids(ds) -> set[str]:
    """Every Referenced SOP Instance UID anywhere in a dataset (the SR's evidence and content)."""
    return {str(el.value) for el in ds.iterall() if el.keyword == "ReferencedSOPInstanceUID"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=248)
    parser.add_argument("--series", type=int, default=4)
    parser.add_argument("--quiet", type=float, default=5.0, help="BRAINAI_DICOM_STUDY_QUIET_S for the listener")
    parser.add_argument("--model", default=os.environ.get("BRAINAI_MODEL", ""),
                        help="BRAINAI_MODEL for the worker (default: the registry's default model)")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for each stage")
    args = parser.parse_args()

    env = _stack.environment()
    env.update({"BRAINAI_DICOM_INBOX": str(_stack.WORK / "inbox"), "BRAINAI_DICOM_ALLOWED": SENDER,
                "BRAINAI_DICOM_STUDY_QUIET_S": str(args.quiet), "BRAINAI_DICOM_MIN_FREE_MB": "0",
                "DJANGO_SILENCED_CHECKS": "brainai.W001,brainai.E001"})
    if args.model:
        env["BRAINAI_MODEL"] = args.model
    _stack.migrate(env)
    _stack.start_redis(env)
    _stack.start_worker(env, queues="gpu,llm,default,outbound")
    _stack.activate(env)
    import logging

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per Orthanc request otherwise

    from pydicom import dcmread
    from pydicom.filebase import DicomBytesIO

    from scans.models import (
        DeliveryStatus, Destination, DestinationKind, DicomInstance, Report, ReportStatus, Scan, Study,
    )
    from tests.pacs import start_orthanc

    orthanc = start_orthanc(_stack.WORK / "orthanc")
    try:
        Destination.objects.create(name="bench-pacs", kind=DestinationKind.CSTORE, ae_title="TESTPACS",
                                   host="127.0.0.1", port=orthanc.dicom_port)
        _, port = start_listener(env)
        study_uid = f"1.2.826.0.1.3680043.8.498.{int(time.time())}"
        paths = build_study(Path(tempfile.mkdtemp(dir=_stack.WORK)), args.instances, args.series, study_uid)
        sent_uids = {str(dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in paths}

        t0 = time.monotonic()
        done = subprocess.run(["storescu", "-aet", SENDER, "-aec", "BRAINAI", "127.0.0.1", str(port),
                               *map(str, paths)], capture_output=True, text=True)
        t_sent = time.monotonic()
        if done.returncode != 0:
            sys.exit(f"storescu failed ({done.returncode}): {done.stderr[-2000:]}")

        rows = DicomInstance.objects.filter(study_instance_uid=study_uid)
        _, t_taken = wait(lambda: rows.count() and not rows.filter(taken_in_at__isnull=True).exists(),
                          args.timeout, "the study taken in")
        study = Study.objects.get(study_instance_uid=study_uid)
        current = Report.objects.current().filter(study=study)
        _, t_finding = wait(lambda: current.exclude(label="").exists()
                            and not Scan.objects.filter(study=study, status="pending").exists(),
                            args.timeout, "the finding")
        _, t_review = wait(lambda: current.filter(status=ReportStatus.AWAITING_REVIEW).exists(),
                           args.timeout, "awaiting_review")
        report = current.get()
        delivery, t_delivered = wait(lambda: report.deliveries.exclude(status=DeliveryStatus.PENDING).first(),
                                     args.timeout, "the send to Orthanc")

        in_pacs = orthanc.instances_of_study(study_uid)
        classes = [i["MainDicomTags"].get("SOPInstanceUID") for i in in_pacs]
        files = {i["MainDicomTags"]["SOPInstanceUID"]: dcmread(DicomBytesIO(orthanc.file(i["ID"]))) for i in in_pacs}
        srs = [ds for ds in files.values() if ds.SOPClassUID == SR_CLASS]
        overlays = [ds for ds in files.values() if ds.SOPClassUID == SC_CLASS]
        sr_refs = set().union(*(referenced_uids(ds) for ds in srs)) if srs else set()
    finally:
        orthanc.stop()

    scans = Scan.objects.filter(study=study)
    scan_uids = list(scans.values_list("sop_instance_uid", flat=True))
    by_status = {s: scans.filter(status=s).count() for s in ("analyzed", "skipped", "failed", "pending")}
    analysed_uids = set(scans.filter(status="analyzed").values_list("sop_instance_uid", flat=True))
    received = rows.count()
    duplicates = sum(rows.values_list("duplicates", flat=True))
    taken_in = rows.filter(taken_in_at__isnull=False).count()
    expected_out = delivery.files if delivery.status == DeliveryStatus.SENT else None
    figures = {
        "bench": "dicom_roundtrip", "instances": args.instances, "series": args.series,
        "model": report.model_name or args.model or "default", "quiet_s": args.quiet,
        "sent": len(sent_uids), "received": received, "duplicates_received": duplicates, "taken_in": taken_in,
        "scans": len(scan_uids), "scans_by_status": by_status, "finding": report.label,
        "storescu_s": round(t_sent - t0, 2), "to_taken_in_s": round(t_taken - t0, 2),
        "to_finding_s": round(t_finding - t0, 2), "to_awaiting_review_s": round(t_review - t0, 2),
        "to_sent_to_pacs_s": round(t_delivered - t0, 2), "delivery": delivery.status, "delivery_files": delivery.files,
        "delivery_attempts": delivery.attempts, "pacs_instances": len(classes), "pacs_sr": len(srs),
        "pacs_overlays": len(overlays), "sr_references": len(sr_refs),
        # lost: sent but not a scan; or sent to the PACS and not there; duplicated: stored twice anywhere
        "lost": len(sent_uids - set(scan_uids)) + (expected_out - len(files) if expected_out else 0),
        "duplicated": (len(scan_uids) - len(set(scan_uids))) + (len(classes) - len(set(classes))),
        "sr_references_not_analysed": len(sr_refs - analysed_uids),
        "cpus": os.cpu_count(),
    }
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    print(f"\n{args.instances} MR instances in {args.series} series, storescu -> dicom_listener "
          f"(quiet {args.quiet:g} s) -> worker -> Orthanc (C-STORE)")
    print(f"machine: {os.cpu_count()} CPUs, {cpu}, {platform.platform()}; model {figures['model']}")
    print(f"instances sent / received / duplicates / taken in: "
          f"{len(sent_uids)} / {received} / {duplicates} / {taken_in}")
    print(f"scans: {len(scan_uids)} ({', '.join(f'{k} {v}' for k, v in by_status.items())}); finding {report.label}")
    print(f"storescu took {figures['storescu_s']} s; from the first instance sent: "
          f"taken in {figures['to_taken_in_s']} s, "
          f"finding {figures['to_finding_s']} s, awaiting_review {figures['to_awaiting_review_s']} s, "
          f"in the PACS {figures['to_sent_to_pacs_s']} s")
    print(f"delivery: {delivery.status}, {delivery.files} files, {delivery.attempts} attempt(s)"
          + (f", {delivery.reason}" if delivery.reason else ""))
    print(f"Orthanc holds for the study: {len(srs)} SR, {len(overlays)} overlay captures ({len(classes)} instances); "
          f"the SR references {len(sr_refs)} instances ({len(analysed_uids)} scans analysed)")
    print(f"lost: {figures['lost']}, duplicated: {figures['duplicated']}")
    print(json.dumps(figures))
    return 0 if figures["lost"] == 0 and figures["duplicated"] == 0 and srs else 1


if __name__ == "__main__":
    sys.exit(main())
