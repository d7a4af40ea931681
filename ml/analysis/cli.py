"""``python -m ml.analyze FILE...``: analyse images at a terminal.

For each file (each frame of a multi-frame DICOM) it prints the label, the calibrated
probabilities and the input guard's verdict, and writes the Grad-CAM overlay PNG,
whose path it prints. Decision support only: not for diagnostic use.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ml.errors import ImageReadError


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m ml.analyze", description=__doc__)
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--model", default=None, help="model name or folder (default: the default model)")
    p.add_argument("--out", default="analysis-out", help="folder for heatmap overlays")
    p.add_argument("--json", action="store_true", help="print one JSON object per image")
    p.add_argument("--no-saliency", action="store_true", help="skip the guided-backprop saliency map")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from ml.analysis.analyzer import Analyzer
    from ml.explain.overlay import render_overlay_png
    from ml.io.read import read_frames

    analyzer = Analyzer.load(args.model)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    failures = 0
    if not args.json:
        print(f"model {analyzer.name} ({analyzer.version}). Decision support only: not for diagnostic use.")
    for path in args.files:
        try:
            frames = read_frames(path)
        except ImageReadError as exc:
            failures += 1
            print(f"{path}: cannot read: {exc}", file=sys.stderr)
            continue
        results = analyzer.analyze(frames, saliency=not args.no_saliency)
        for i, (frame, res) in enumerate(zip(frames, results)):
            suffix = f"-frame{i + 1}" if len(frames) > 1 else ""
            heat_path = out / f"{Path(path).stem}{suffix}-gradcam.png"
            heat_path.write_bytes(render_overlay_png(frame.pixels, res.gradcam))
            probs = {k: round(float(v), 4) for k, v in res.probabilities.items()}
            if args.json:
                print(json.dumps({"file": path, "frame": i, "label": res.label, "confidence": res.confidence,
                                  "probabilities": probs, "in_distribution": res.in_distribution,
                                  "guard": res.guard, "heatmap": str(heat_path)}))
                continue
            print(f"\n{path}{suffix}")
            print(f"  label       {res.label} ({100 * res.confidence:.1f}%)")
            for name, p in sorted(probs.items(), key=lambda kv: -kv[1]):
                print(f"  {name:<11} {100 * p:5.1f}%  {'#' * int(round(30 * p))}")
            guard = "brain MRI" if res.in_distribution else "NOT a brain MRI slice: " + "; ".join(
                res.guard.get("reasons", []))
            print(f"  input guard {guard}")
            print(f"  heatmap     {heat_path}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
