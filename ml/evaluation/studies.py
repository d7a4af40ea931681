"""``python -m ml.evaluate_studies DIR``: series decisions and study findings for folders of DICOM.

Reads every file under DIR, groups frames by Study and Series Instance UID, decides each
series with the series rules, classifies the slices of the analysed series that hold a
head (no maps: only the probabilities matter here), and decides each study with
ml.study.study_finding. Prints per series the decision and its reason, per study the
finding and its evidence; writes the same as JSON. No Django.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

from ml.errors import ImageReadError
from ml.io.read import read_frames
from ml.study import (SeriesEvidence, SeriesFacts, SliceScore, decide_series, decide_slice, load_rules,
                      study_finding)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m ml.evaluate_studies", description=__doc__)
    p.add_argument("dir", help="a folder of DICOM studies (any layout)")
    p.add_argument("--model", default=None, help="model name (default: the default model)")
    p.add_argument("--rules", default=None, help="a series rules JSON (default: ml/study/series_rules.json)")
    p.add_argument("--out", default="studies.json", help="where the JSON goes")
    return p.parse_args(argv)


def read_tree(root: Path) -> dict[str, dict[str, list]]:
    """{study uid: {series uid: [(file name, Frame), ...]}}; unreadable files are skipped."""
    studies: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        try:
            frames = read_frames(path.read_bytes())
        except ImageReadError:
            continue
        for frame in frames:
            if frame.meta.get("format") != "DICOM":
                continue
            meta = frame.meta
            studies[meta.get("study_instance_uid") or "?"][meta.get("series_instance_uid") or "?"].append(
                (path.name, frame))
    return studies


def _order(item) -> tuple:
    meta = item[1].meta
    return (meta.get("instance_number") or 0, meta.get("frame_index") or 0, item[0])


class LazyAnalyzer:
    """Loads the model on the first slice to classify: a folder with nothing to analyse needs none."""

    def __init__(self, model: str | None):
        self.model, self.analyzer = model, None

    def __call__(self, frames) -> list:
        if self.analyzer is None:
            from ml.analysis.analyzer import Analyzer

            self.analyzer = Analyzer.load(self.model)
        return self.analyzer.analyze(frames, saliency=False, gradcam_pp=False, faithfulness=False)

    def name(self) -> str | None:
        return f"{self.analyzer.name} {self.analyzer.version}" if self.analyzer is not None else None


def evaluate_study(series: dict[str, list], rules, classify) -> dict:
    """One study: the decision per series, the slices skipped, and the finding.

    ``classify`` takes Frames and returns one ml SliceResult each (LazyAnalyzer in the command).
    """
    rows, evidence, reasons = [], [], []
    for uid, items in series.items():
        items = sorted(items, key=_order)
        facts = SeriesFacts.from_metas([f.meta for _, f in items])
        decision = decide_series(facts, rules)
        row = {"series_number": facts.number, "description": facts.description, "slices": len(items),
               **decision.as_dict(), "facts": facts.as_dict()}
        rows.append(row)
        if not decision.analysed:
            reasons.append(f"{facts.name()}: {decision.reason}")
            continue
        kept, skipped = [], defaultdict(int)
        for position, (_, frame) in enumerate(items, start=1):
            if (position - 1) % decision.step != decision.step // 2:  # a thin 3D volume, sampled
                skipped["between the sampled slices of a 3D volume"] += 1
                continue
            sd = decide_slice(frame.pixels, rules, signal_level=frame.meta.get("signal_level"),
                              series_level=facts.signal_level)
            if sd.analysed:
                kept.append((position, frame))
            else:
                skipped[sd.reason.split(":")[0]] += 1
        results = classify([f for _, f in kept]) if kept else []
        scores = [SliceScore(i, dict(r.probabilities), r.in_distribution, number=frame.meta.get("instance_number"))
                  for i, ((_, frame), r) in enumerate(zip(kept, results), start=1)]
        row["classified"], row["skipped"] = len(scores), dict(skipped)
        if facts.slice_thickness and decision.step > 1:  # k counts the sampled slices' spacing
            facts.slice_thickness *= decision.step
        evidence.append(SeriesEvidence(facts, scores, skipped=sum(skipped.values())))
    finding = study_finding(evidence, k=rules.k, t=rules.t, reference_mm=rules.reference_mm, not_analysed=reasons)
    return {"series": rows, "finding": finding.as_dict()}


def main(argv=None) -> int:
    args = parse_args(argv)
    rules = load_rules(args.rules)
    tree = read_tree(Path(args.dir))
    if not tree:
        print(f"no DICOM found under {args.dir}", file=sys.stderr)
        return 1
    classify = LazyAnalyzer(args.model)
    out = {"rules_version": rules.version, "k": rules.k, "t": rules.t, "studies": []}
    for n, (uid, series) in enumerate(tree.items(), start=1):
        result = evaluate_study(series, rules, classify)
        out["studies"].append({"study": n, **result})  # the UID stays out of the printout (PHI)
        print(f"study {n}: {result['finding']['label']} — {result['finding']['evidence']}")
        for row in result["series"]:
            state = "analysed" if row["analysed"] else "not analysed"
            extra = f", {row.get('classified', 0)} classified, skipped {row.get('skipped') or 0}" if row["analysed"] else ""
            print(f"  series {row['series_number']} ({row['description']}, {row['slices']} images): "
                  f"{state} — {row['reason']}{extra}")
    out["model"] = classify.name()  # None when no slice needed the model
    Path(args.out).write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    print(f"rules {rules.version} (k={rules.k}, t={rules.t}); JSON: {args.out}")
    return 0
