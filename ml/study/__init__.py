"""Real studies: series facts and rules, slice selection, the study finding from consistent evidence.

Layer 3 of ml/ (beside data, guard, explain): imports ml.io, ml.model and ml.labels only.
"""
from ml.study.finding import SeriesEvidence, SliceScore, StudyFinding, study_finding
from ml.study.rules import DEFAULT_RULES_PATH, Rules, RulesError, load_rules
from ml.study.series import ANALYSED, SeriesDecision, SeriesFacts, decide_series, plane_of
from ml.study.slices import SliceDecision, decide_slice, head_fraction

__all__ = ["ANALYSED", "DEFAULT_RULES_PATH", "Rules", "RulesError", "SeriesDecision", "SeriesEvidence",
           "SeriesFacts", "SliceDecision", "SliceScore", "StudyFinding", "decide_series", "decide_slice",
           "head_fraction", "load_rules", "plane_of", "study_finding"]
