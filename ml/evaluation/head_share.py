"""``python -m ml.evaluation.head_share [DIR] [--every N]``: how much of each training slice
is head, by the product's slice-selection measure (:func:`ml.study.head_fraction`).

The figures behind the slice rule's ``min_head_fraction`` (docs/series-selection.md): the
smallest share on real slices, how many fall under the bound, and how many fill the frame.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ml.data.dataset import default_data_dir, scan
from ml.io.read import read_image
from ml.study import head_fraction


def shares(data_dir, every: int = 5) -> np.ndarray:
    """Head fraction of every ``every``-th image of a one-folder-per-class dataset."""
    return np.array([head_fraction(read_image(Path(item.path).read_bytes()))
                     for item in scan(data_dir)[::every]], np.float32)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml.evaluation.head_share", description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", default=str(default_data_dir()))
    parser.add_argument("--every", type=int, default=5, help="read every N-th image")
    parser.add_argument("--bound", type=float, default=0.06, help="the rule's min_head_fraction")
    args = parser.parse_args(argv)
    s = shares(args.data, args.every)
    row = {"slices": int(s.size), "min": round(float(s.min()), 4), "median": round(float(np.median(s)), 4),
           "below_bound": int((s < args.bound).sum()), "whole_frame_pct": round(100 * float((s >= 0.99).mean()), 2)}
    print(f"{row['slices']} slices: head share min {row['min']}, median {row['median']}; "
          f"below {args.bound}: {row['below_bound']}; whole frame: {row['whole_frame_pct']}%")
    print(json.dumps(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
