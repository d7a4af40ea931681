"""Queue + database overhead of the pipeline on a 200-image study, through a real worker.

    .venv/bin/python bench/pipeline.py [--images 200]

Starts a private stack (bench/_stack.py: SQLite under var/bench/, its own redis-server,
one Celery worker (prefork, concurrency 1) on all queues, like worker-gpu), warms the worker up with a
one-image study (model load and graph tracing are not counted), then uploads N dataset
slices (../shared/datasets, or synthetic phantoms without it) through
scans.services.register_upload and times, from the moment the upload commits:

- analysis wall time: until the study's finding is set (study status "explaining");
- inside the worker (its log line "stages"): decode, model (Analyzer.analyze), render
  (heatmap/overlay/saliency PNGs) and db (claiming batches, storing analyses and PNG
  files, completing the study);
- overhead = analysis wall time - decode - slice selection - model - render: the queue, the task start and
  every database write; the target is at most 10% of the model time;
- explanation + finalisation wall time (template provider unless BENCH_LLM_PROVIDER);
- the detail pass (saliency + faithfulness check of the key slice and the slices that
  carry the finding, queued at low priority on completion) and its stages;
- the model-only rate on the same slices in this process, once the worker is idle:
  ``Analyzer.analyze`` classify + Grad-CAM (no saliency, no faithfulness), batch 32,
  images already decoded; and the ratio of the worker's end-to-end rate (upload commit
  to finding, file in to rows and PNGs out) to it.

    .venv/bin/python bench/pipeline.py --images 248 --model xception

Then bench/api.py's measurement of GET /api/v1/reports/{id}/ on that 200-slice report.
Prints a table and, last, one line of JSON. Figures, never pass/fail.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import _stack  # noqa: E402
from bench import api as api_bench  # noqa: E402

DATASET = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "brain-tumor-mri" / "Training"


def images(n: int) -> list[tuple[str, bytes]]:
    files = []
    if DATASET.is_dir():
        import hashlib

        per_class = [sorted((DATASET / c).glob("*.jpg")) for c in ("glioma", "meningioma", "notumor", "pituitary")]
        seen = set()
        for i in range(max(len(p) for p in per_class) * 4):
            path = per_class[i % 4][i // 4] if i // 4 < len(per_class[i % 4]) else None
            data = path.read_bytes() if path else b""
            digest = hashlib.sha256(data).hexdigest()
            if data and digest not in seen:  # the dataset holds byte-identical copies
                seen.add(digest)
                files.append((f"slice{len(files):03d}.jpg", data))
            if len(files) == n:
                return files
    import io

    import numpy as np
    from PIL import Image

    for i in range(n):
        rng = np.random.default_rng(i)
        yy, xx = np.mgrid[0:224, 0:224] / 224
        img = (((yy - .5) / .42) ** 2 + ((xx - .5) / .36) ** 2 < 1) * 120 + rng.integers(0, 30, (224, 224))
        buf = io.BytesIO()
        Image.fromarray(img.astype("uint8")).save(buf, format="JPEG")
        files.append((f"phantom{i:03d}.jpg", buf.getvalue()))
    return files


def _wait_status(study_id: int, statuses: set[str], timeout: float = 1800) -> float:
    from scans.models import Study

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if Study.objects.filter(pk=study_id, status__in=statuses).exists():
            return time.perf_counter()
        time.sleep(0.01)
    sys.exit(f"study {study_id} did not reach {statuses} in {timeout} s")


def _stages(log: Path, study_id: int) -> dict:
    for _ in range(100):
        match = re.search(rf"study {study_id}: (\d+) scans analysed; stages (\{{.*?\}})", log.read_text(errors="replace"))
        if match:
            return {"analyzed": int(match.group(1)), **json.loads(match.group(2))}
        time.sleep(0.05)
    sys.exit("the worker's log has no stages line")


def _detail_stages(log: Path, study_id: int, timeout: float = 1800) -> dict:
    """The worker's detail-pass line for a study (waits for it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        match = re.search(rf"study {study_id}: detail for (\d+) scans; stages (\{{.*?\}})",
                          log.read_text(errors="replace"))
        if match:
            return {"detailed": int(match.group(1)), **json.loads(match.group(2))}
        time.sleep(0.05)
    sys.exit("the worker's log has no detail line")


def model_only_rate(model: str | None, files, batch: int = 32) -> float:
    """Slices/s of classify + Grad-CAM alone (Analyzer.analyze, no saliency, no
    faithfulness, decoded images) on the study's slices, best of two runs."""
    from ml.analysis.analyzer import Analyzer
    from ml.io.read import read_frames

    analyzer = Analyzer.load(model)
    images = [read_frames(d)[0].pixels for _, d in files]
    flags = {"saliency": False, "gradcam_pp": False, "faithfulness": False, "batch_size": batch}
    analyzer.analyze(images[:batch], **flags)  # warm-up at this batch shape
    best = float("inf")
    for _ in range(2):
        t0 = time.perf_counter()
        analyzer.analyze(images, **flags)
        best = min(best, time.perf_counter() - t0)
    return len(images) / best


def upload(user, files, patient_id: str, model: str = ""):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from scans import services

    start = time.perf_counter()
    result = services.register_upload(user, [SimpleUploadedFile(n, d) for n, d in files], {"patient_id": patient_id},
                                      model=model)
    return result.studies[0].pk, time.perf_counter(), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--model", default="", help="model name (default: the configured default)")
    args = parser.parse_args()

    env, log = _stack.start_stack()
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from scans.models import Report

    user = get_user_model().objects.create_superuser("bench", password="bench-pw-123")
    data = images(args.images + 1)

    warm_id, _, _ = upload(user, data[:1], "BENCH-WARM", args.model)
    _wait_status(warm_id, {"awaiting_review", "failed"})
    _detail_stages(log, warm_id)

    study_id, t0, upload_s = upload(user, data[1:], "BENCH-200", args.model)
    t_found = _wait_status(study_id, {"explaining", "awaiting_review", "failed"})
    t_ready = _wait_status(study_id, {"awaiting_review", "failed"})
    stages = _stages(log, study_id)
    detail = _detail_stages(log, study_id)
    t_detail = time.perf_counter()
    report = Report.objects.current().get(study_id=study_id)
    model_rate = model_only_rate(report.model_name, data[1:])

    wall = t_found - t0
    image_work = stages["decode"] + stages.get("select", 0.0) + stages["model"] + stages["render"]
    overhead = wall - image_work
    n = stages["analyzed"]
    result = {
        "bench": "pipeline", "images": args.images, "analyzed": n, "batch_size": settings.BRAINAI_BATCH_SIZE,
        "saliency": settings.BRAINAI_SALIENCY, "model": f"{report.model_name} {report.model_version}",
        "database": env["DATABASE_URL"].split(":", 1)[0], "cpus": os.cpu_count(), "python": platform.python_version(),
        "upload_s": round(upload_s, 3), "analysis_wall_s": round(wall, 3),
        "decode_s": round(stages["decode"], 3), "select_s": round(stages.get("select", 0.0), 3),
        "model_s": round(stages["model"], 3),
        "render_s": round(stages["render"], 3), "db_s": round(stages["db"], 3),
        "overhead_s": round(overhead, 3), "queue_and_task_start_s": round(overhead - stages["db"], 3),
        "overhead_pct_of_model": round(100 * overhead / stages["model"], 2),
        "explain_and_finalize_s": round(t_ready - t_found, 3),
        "slices_per_s_model_only": round(n / stages["model"], 2), "slices_per_s_end_to_end": round(n / wall, 2),
        "report_status": report.status,
        "detail_slices": detail["detailed"], "detail_done_after_commit_s": round(t_detail - t0, 3),
        "detail_stages_s": {k: round(v, 3) for k, v in detail.items() if k != "detailed"},
        "model_only_classify_gradcam_slices_per_s": round(model_rate, 2),
        "worker_over_model_only": round(n / wall / model_rate, 3),
    }
    (_stack.WORK / "state.json").write_text(json.dumps({"report_id": report.pk, "env": {
        k: env[k] for k in ("DATABASE_URL", "BRAINAI_MEDIA_ROOT", "BRAINAI_VAR_DIR", "REDIS_URL")}}))
    rows = [(f"upload (register_upload, {n} files)", result["upload_s"]),
            ("analysis wall time (commit -> finding)", result["analysis_wall_s"]),
            ("  decode (in worker)", result["decode_s"]), ("  slice selection", result["select_s"]),
            ("  model (Analyzer.analyze)", result["model_s"]),
            ("  render PNGs", result["render_s"]), ("  db + PNG files", result["db_s"]),
            ("  queue + task start", result["queue_and_task_start_s"]),
            ("overhead = wall - decode - select - model - render", result["overhead_s"]),
            ("explanation + finalisation", result["explain_and_finalize_s"])]
    print(f"pipeline on {n} slices, model {result['model']}, {result['database']}, {result['cpus']} CPUs")
    for name, seconds in rows:
        print(f"{name:<44}{seconds:>9.3f} s")
    print(f"{'overhead / model time':<44}{result['overhead_pct_of_model']:>9.2f} %")
    print(f"{'slices/s: model stage, end to end':<44}{result['slices_per_s_model_only']:>6} / {result['slices_per_s_end_to_end']}")
    print(f"detail pass: {detail['detailed']} slices, done {result['detail_done_after_commit_s']:.1f} s after the "
          f"commit; stages " + ", ".join(f"{k} {v:.2f} s" for k, v in result["detail_stages_s"].items()))
    print(f"{'model only (classify + Grad-CAM, batch 32)':<44}{model_rate:>9.2f} slices/s")
    print(f"{'worker end to end / model only':<44}{100 * result['worker_over_model_only']:>9.1f} %")
    api = api_bench.measure(env, report.pk)
    print()
    api_bench.print_table(api)
    result["api"] = api
    print(json.dumps(result))


if __name__ == "__main__":
    main()
