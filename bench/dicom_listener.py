"""DICOM receive throughput: instances per second that `manage.py dicom_listener` takes in over
loopback from dcmtk's storescu, next to the same run's storescu -> Orthanc rate.

A study of 248 MR instances (256 px, 16-bit, from the dataset's slices; phantoms without
it) is sent in one association per round, alternating receivers, with fresh UIDs each
round. Our listener stores each instance durably before it answers (file fsynced and
renamed, then its row committed on SQLite); the study quiet period is set past the run so
only receiving is timed. Orthanc (Debian's package, SQLite index, default settings) is the
reference when installed; otherwise a plain pynetdicom SCP that only writes files, and the
table says so. Prints a table and a JSON line last; never passes or fails on time.

    python bench/dicom_listener.py [--instances 248] [--rounds 3]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PY = sys.executable
ORTHANC = "/usr/sbin/Orthanc"

from bench._stack import free_port, wait_port  # noqa: E402  (after the path insert)


def make_study(folder: Path, n: int, round_no: int) -> list[Path]:
    from tests.builders import mr_study

    folder.mkdir(parents=True)
    uid = f"1.2.826.0.1.3680043.8.498.{int(time.time())}{round_no:02d}"
    paths = []
    for i, data in enumerate(mr_study(n, size=256, study_uid=uid, patient_id=f"BENCH-{round_no}")):
        path = folder / f"IM{i:04d}.dcm"
        path.write_bytes(data)
        paths.append(path)
    return paths


def storescu(port: int, called: str, paths: list[Path]) -> float:
    start = time.perf_counter()
    done = subprocess.run(["storescu", "-aet", "BENCH", "-aec", called, "127.0.0.1", str(port),
                           *map(str, paths)], capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"storescu to {called} failed: {done.stderr[-2000:]}")
    return elapsed


class Ours:
    name = "BrainAI dicom_listener"

    def __init__(self, work: Path):
        self.db = work / "brainai.sqlite3"
        self.env = {**os.environ, "DJANGO_SETTINGS_MODULE": "brainai_site.settings",
                    "DATABASE_URL": f"sqlite:///{self.db}", "BRAINAI_VAR_DIR": str(work / "var"),
                    "BRAINAI_MEDIA_ROOT": str(work / "media"), "BRAINAI_DICOM_INBOX": str(work / "inbox"),
                    "BRAINAI_DICOM_ALLOWED": "BENCH", "BRAINAI_DICOM_STUDY_QUIET_S": "86400",
                    "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "DJANGO_SILENCED_CHECKS": "brainai.W001,brainai.E001"}
        subprocess.run([PY, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=self.env, check=True)
        self.port = free_port()
        self.proc = subprocess.Popen([PY, "manage.py", "dicom_listener", "--port", str(self.port)], cwd=ROOT,
                                     env=self.env, stdout=subprocess.DEVNULL, stderr=open(work / "listener.log", "wb"))
        wait_port(self.port, self.proc, self.name)
        self.called = "BRAINAI"

    def count(self) -> int:
        with sqlite3.connect(self.db) as db:
            return db.execute("select count(*) from scans_dicominstance").fetchone()[0]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)


class OrthancPeer:
    name = "Orthanc (Debian package)"

    def __init__(self, work: Path):
        self.port, self.http = free_port(), free_port()
        config = {"Name": "bench", "StorageDirectory": str(work / "orthanc"), "IndexDirectory": str(work / "orthanc"),
                  "DicomAet": "ORTHANC", "DicomPort": self.port, "HttpPort": self.http, "RemoteAccessAllowed": False,
                  "AuthenticationEnabled": False, "Plugins": [], "DicomCheckCalledAet": False}
        (work / "orthanc.json").write_text(json.dumps(config))
        self.proc = subprocess.Popen([ORTHANC, str(work / "orthanc.json")], stdout=subprocess.DEVNULL,
                                     stderr=open(work / "orthanc.log", "wb"))
        wait_port(self.port, self.proc, self.name)
        self.called = "ORTHANC"

    def count(self) -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/statistics", timeout=10) as answer:
            return json.load(answer)["CountInstances"]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)


PLAIN_SCP = textwrap.dedent("""
    import sys
    from pathlib import Path
    from pynetdicom import AE, evt, AllStoragePresentationContexts
    out = Path(sys.argv[2])
    def store(event):
        (out / (event.request.AffectedSOPInstanceUID + ".dcm")).write_bytes(event.encoded_dataset(include_meta=True))
        return 0
    ae = AE(ae_title="PLAIN")
    ae.maximum_pdu_size = 0
    ae.supported_contexts = AllStoragePresentationContexts
    ae.start_server(("127.0.0.1", int(sys.argv[1])), evt_handlers=[(evt.EVT_C_STORE, store)])
""")


class PlainScp:
    name = "plain pynetdicom SCP (files only; Orthanc not installed)"

    def __init__(self, work: Path):
        self.folder = work / "plain"
        self.folder.mkdir()
        self.port = free_port()
        self.proc = subprocess.Popen([PY, "-c", PLAIN_SCP, str(self.port), str(self.folder)])
        wait_port(self.port, self.proc, self.name)
        self.called = "PLAIN"

    def count(self) -> int:
        return len(list(self.folder.glob("*.dcm")))

    def stop(self):
        self.proc.terminate()
        self.proc.wait(30)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=248)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not shutil.which("storescu"):
        sys.exit("storescu not found: bash scripts/install-test-tools.sh (Debian's dcmtk)")
    work = Path(tempfile.mkdtemp(prefix="brainai-bench-dicom-"))
    peers = []
    try:
        peers = [Ours(work), OrthancPeer(work) if os.access(ORTHANC, os.X_OK) else PlainScp(work)]
        rates: dict[str, list[float]] = {p.name: [] for p in peers}
        for round_no in range(args.rounds):
            for peer in peers:
                paths = make_study(work / f"study-{round_no}-{peer.called}", args.instances, round_no)
                before = peer.count()
                elapsed = storescu(peer.port, peer.called, paths)
                received = peer.count() - before
                if received != args.instances:
                    sys.exit(f"{peer.name} kept {received} of {args.instances} instances")
                rates[peer.name].append(args.instances / elapsed)
    finally:
        for peer in peers:
            peer.stop()
        shutil.rmtree(work, ignore_errors=True)
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    print(f"\n{args.instances} MR instances (256 px, 16-bit) per round, {args.rounds} rounds, storescu over loopback")
    print(f"machine: {os.cpu_count()} CPUs, {cpu}, {platform.platform()}")
    print(f"{'receiver':58} {'median inst/s':>14} {'rounds':>24}")
    for name, values in rates.items():
        print(f"{name:58} {statistics.median(values):14.1f} {' '.join(f'{v:.1f}' for v in values):>24}")
    print(json.dumps({"bench": "dicom_listener", "instances": args.instances, "rounds": args.rounds,
                      "median_instances_per_s": {k: round(statistics.median(v), 1) for k, v in rates.items()},
                      "cpus": os.cpu_count()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
