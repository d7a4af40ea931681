"""Build a sample study to try BrainAI with: ``make sample`` -> var/sample-study.zip.

The ZIP holds one slice of each class, read in place from the training data
(BRAINAI_DATA_DIR, default ../shared/datasets/brain-tumor-mri/Training; the images are
never copied into the repository), and a manifest.csv that files them under one
fictional patient. Upload it on the portal's Upload page or with the API.
"""
from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ml.data.dataset import default_data_dir  # noqa: E402
from ml.labels import CLASSES  # noqa: E402


def build(data_dir: Path, out: Path) -> Path:
    """Write the sample ZIP (the first image of each class folder, in name order)."""
    rows = ["file,patient_id,patient_name,study,study_description"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in CLASSES:
            folder = data_dir / name
            images = sorted(p for p in folder.glob("*.jpg")) if folder.is_dir() else []
            if not images:
                raise SystemExit(f"no JPEG images in {folder}; set BRAINAI_DATA_DIR to the Training folder")
            arc = f"sample/slice-{len(rows)}.jpg"
            zf.write(images[0], arc)
            rows.append(f"{arc},DEMO-0001,Sample Patient,demo,MRI brain (sample study)")
        zf.writestr("manifest.csv", "\n".join(rows) + "\n")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(buf.getvalue())
    return out


if __name__ == "__main__":
    path = build(default_data_dir(), ROOT / "var" / "sample-study.zip")
    print(f"wrote {path}: 4 slices for the fictional patient DEMO-0001; upload it on the Upload page")
