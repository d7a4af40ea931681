"""Series selection for stored studies: the rules in force, and the decision per series of an upload.

The rules and the decision are ml.study's; this module only reads the settings
(BRAINAI_SERIES_RULES) and groups prepared items by series. No database.
"""
from __future__ import annotations

from collections import defaultdict

from django.conf import settings

from ml.study import Rules, SeriesDecision, SeriesFacts, decide_series, load_rules
from scans.services.intake import PreparedItem


def current_rules() -> Rules:
    """The series rules in force: BRAINAI_SERIES_RULES, or the file shipped in ml/study/."""
    return load_rules(settings.BRAINAI_SERIES_RULES)


def decide_upload(items: list[PreparedItem]) -> dict[str, tuple[SeriesFacts, SeriesDecision]]:
    """``{series_key: (facts, decision)}`` for every series the prepared items belong to."""
    metas = defaultdict(list)
    for item in items:
        metas[item.series_key].extend(frame.meta for frame in item.frames)
    rules = current_rules()
    out = {}
    for key, series_metas in metas.items():
        facts = SeriesFacts.from_metas(series_metas)
        out[key] = (facts, decide_series(facts, rules))
    return out
