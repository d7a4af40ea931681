"""Peak memory of reading one large series (mercure #49: a series of 20,000 small instances).

    .venv/bin/python -m bench.series_memory [--instances 2000 20000] [--size 64]

Generates N small MR instances of one series (``--size`` px square, 16-bit) and hands
them to ``scans.services.intake.read_upload`` in one call, as one HTTP upload (at most
``BRAINAI_UPLOAD_MAX_FILES``, default 2000, files) or one DICOM association's study does.
Prints, per N, the bytes received, the peak memory Python allocated while reading
(tracemalloc) and that peak per instance. A series over ``BRAINAI_SERIES_MAX_INSTANCES``
(default 4000; set it in the environment to measure another) is refused whole: its row
shows 0 accepted. Figures only: nothing passes or fails.
"""
from __future__ import annotations

import argparse
import json
import os
import time
import tracemalloc


def _instances(n: int, size: int) -> list[tuple[str, bytes]]:
    from tests import builders as b

    uid = "1.2.826.0.1.3680043.8.498.4949"
    return [(f"i{i}.dcm", b.dicom_bytes(study_uid=uid, series_uid=f"{uid}.1", sop_uid=f"{uid}.1.{i + 1}",
                                        instance_number=i + 1, size=size, seed=i % 7)) for i in range(n)]


def measure(n: int, size: int) -> dict:
    from scans.services.intake import read_upload

    files = _instances(n, size)
    received = sum(len(d) for _, d in files)
    tracemalloc.start()
    started = time.perf_counter()
    result = read_upload(files)
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"instances": n, "size_px": size, "received_mb": round(received / 2**20, 1),
            "accepted": len(result.items), "rejected": len(result.rejected),
            "peak_mb": round(peak / 2**20, 1), "peak_kb_per_instance": round(peak / 1024 / n, 1),
            "seconds": round(seconds, 1)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brainai_site.settings_test")
    import django

    django.setup()
    rows = [measure(n, args.size) for n in args.instances]
    print(f"{'instances':>10} {'px':>4} {'received MB':>12} {'accepted':>9} {'rejected':>9} "
          f"{'peak MB':>8} {'KB/inst':>8} {'s':>6}")
    for r in rows:
        print(f"{r['instances']:>10} {r['size_px']:>4} {r['received_mb']:>12} {r['accepted']:>9} {r['rejected']:>9} "
              f"{r['peak_mb']:>8} {r['peak_kb_per_instance']:>8} {r['seconds']:>6}")
    print(json.dumps({"bench": "series_memory", "rows": rows}))


if __name__ == "__main__":
    main()
