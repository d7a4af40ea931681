"""Building and sending a study's results as DICOM: the SR of a 248-instance study and its
overlay captures, built by dicom_out and sent to a real Orthanc (tests/pacs.py).

    .venv/bin/python bench/results_out.py [--instances 248] [--series 4] [--repeat 5]

No Django: the result dicts are made up (the shapes scans.services.results builds), the
overlays are the seeded test overlay. Times, per repeat (median printed):

- build: dicom_out.build_sr + one build_capture per series (one key slice each);
- C-STORE: dicom_out.send_cstore of all the files over one association to Orthanc;
- STOW-RS: dicom_out.send_stow of the same files in one POST to Orthanc's DICOMweb plugin;

then the SR's size and dciodvfy's error count on the SR and one capture. Prints a table
and, last, one line of JSON. Figures, never pass/fail.
"""
from __future__ import annotations

import argparse
import io
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pydicom.uid import generate_uid  # noqa: E402

from dicom_out import build_capture, build_sr, send_cstore, send_stow  # noqa: E402
from tests.builders import seeded_overlay_png  # noqa: E402
from tests.pacs import AE_TITLE, dciodvfy, start_orthanc  # noqa: E402

MR = "1.2.840.10008.5.1.4.1.1.4"
CLASSES = ("glioma", "meningioma", "notumor", "pituitary")


def _study(uid: str) -> dict:
    return {"study_instance_uid": uid, "patient_id": "BENCH-1", "patient_name": "Bench^Patient",
            "patient_birth_date": "19700101", "patient_sex": "O", "study_date": "20260101", "study_time": "120000",
            "accession_number": "B1", "study_id": "1", "referring_physician_name": ""}


def _result(uid: str, instances: int, series: int) -> dict:
    per = instances // series
    return {"label": "glioma", "evidence": "5 contiguous slices of series 1 at p >= 0.6", "model_name": "xception",
            "model_version": "bench", "version": 1, "verified": False, "signed_by": None, "signed_at": None,
            "series": [{"series_instance_uid": f"{uid}.{s}", "number": s, "description": f"series {s}",
                        "label": "glioma", "probabilities": dict(zip(CLASSES, (0.7, 0.1, 0.15, 0.05))),
                        "instances": [{"sop_class_uid": MR, "sop_instance_uid": f"{uid}.{s}.{i}"}
                                      for i in range(1, per + (instances % series if s == series else 0) + 1)]}
                       for s in range(1, series + 1)]}


def _files(uid: str, instances: int, series: int, png: bytes):
    study, result = _study(uid), _result(uid, instances, series)
    sr = build_sr(study, result, {"series_instance_uid": generate_uid(), "sop_instance_uid": generate_uid(),
                                  "instance_number": 1})
    overlays = generate_uid()
    captures = [build_capture(study, {**s["instances"][0], "series_instance_uid": s["series_instance_uid"],
                                      "number": s["number"]},
                              {"series_instance_uid": overlays, "sop_instance_uid": generate_uid(),
                               "instance_number": n}, png)
                for n, s in enumerate(result["series"], start=1)]
    return [sr, *captures]


def _encoded(ds) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=248)
    parser.add_argument("--series", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    png = seeded_overlay_png(224)
    tmp = Path(tempfile.mkdtemp(prefix="brainai-bench-results-"))
    pacs = start_orthanc(tmp)
    build_s, cstore_s, stow_s = [], [], []
    try:
        for _ in range(args.repeat):
            uid = f"1.2.826.0.1.3680043.8.498.{time.time_ns()}"  # short enough for ".<series>.<instance>"
            start = time.perf_counter()
            files = _files(uid, args.instances, args.series, png)
            build_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            send_cstore(files, ae_title=AE_TITLE, host="127.0.0.1", port=pacs.dicom_port)
            cstore_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            send_stow(files, url=pacs.stow_url)
            stow_s.append(time.perf_counter() - start)
        sr_bytes, sc_bytes = _encoded(files[0]), _encoded(files[1])
        sr_errors, sc_errors = len(dciodvfy(sr_bytes, tmp)[0]), len(dciodvfy(sc_bytes, tmp)[0])
    finally:
        pacs.stop()
    out = {"instances": args.instances, "series": args.series, "files": len(files), "repeat": args.repeat,
           "build_s": round(statistics.median(build_s), 4), "cstore_s": round(statistics.median(cstore_s), 4),
           "stow_s": round(statistics.median(stow_s), 4), "dciodvfy_errors_sr": sr_errors,
           "dciodvfy_errors_sc": sc_errors, "sr_bytes": len(sr_bytes), "capture_bytes": len(sc_bytes), "machine": platform.machine()}
    print(f"{args.instances} instances in {args.series} series -> 1 SR + {len(files) - 1} captures, median of {args.repeat}")
    print(f"  build (SR + captures)  {out['build_s']:.3f} s")
    print(f"  C-STORE to Orthanc     {out['cstore_s']:.3f} s (one association)")
    print(f"  STOW-RS to Orthanc     {out['stow_s']:.3f} s (one POST)")
    print(f"  sizes                  SR {len(sr_bytes)} bytes, capture {len(sc_bytes)} bytes")
    print(f"  dciodvfy errors        SR {sr_errors}, capture {sc_errors}")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
