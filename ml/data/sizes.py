"""``python -m ml.data.sizes [DIR]``: the pixel sizes of a one-folder-per-class dataset.

The series rules' matrix minimum (ml/study/series_rules.json, docs/series-selection.md)
rests on these figures: the smallest side of every training image, per class and overall.
Pillow reads only the image headers for the sizes.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from ml.data.dataset import default_data_dir, scan
from ml.labels import CLASSES


def smallest_sides(data_dir: str | Path) -> dict[str, list[int]]:
    """Class -> the smaller side (pixels) of each of its images.

    Raises:
        FileNotFoundError: a class folder is missing (from :func:`ml.data.dataset.scan`).
    """
    sides: dict[str, list[int]] = {}
    for item in scan(data_dir):
        with Image.open(item.path) as image:
            sides.setdefault(CLASSES[item.label], []).append(min(image.size))
    return sides


def summary(sides: dict[str, list[int]], below: int = 128) -> dict[str, dict]:
    """Per class and for "all": count, min, median and max side, and how many fall below ``below``."""
    rows = dict(sides)
    rows["all"] = [s for values in sides.values() for s in values]
    return {name: {"images": len(v), "min": int(np.min(v)), "median": float(np.median(v)),
                   "max": int(np.max(v)), f"below_{below}": int(np.sum(np.asarray(v) < below))}
            for name, v in rows.items() if v}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml.data.sizes", description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", default=str(default_data_dir()))
    parser.add_argument("--below", type=int, default=128, help="count images whose smaller side is below this")
    args = parser.parse_args(argv)
    table = summary(smallest_sides(args.data), args.below)
    for name, row in table.items():
        print(f"{name:<12}{row['images']:>6} images  smallest side: min {row['min']}, "
              f"median {row['median']:g}, max {row['max']}; below {args.below}: {row[f'below_{args.below}']}")
    print(json.dumps(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
