"""System checks: model weights (error) and broker (warning)."""
from __future__ import annotations

from scans.checks import broker_reachable, model_weights_present


def test_a_missing_model_is_an_error_naming_what_to_set(settings):
    settings.BRAINAI_MODEL = "no-such-model"
    errors = model_weights_present()
    assert [e.id for e in errors] == ["brainai.E001"]
    assert "no-such-model" in errors[0].msg and "BRAINAI_MODEL" in errors[0].hint


def test_an_unreachable_broker_is_a_warning(settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    warnings = broker_reachable()
    assert [w.id for w in warnings] == ["brainai.W001"] and "REDIS_URL" in warnings[0].msg


def test_unreadable_series_rules_are_an_error_at_start(settings, tmp_path):
    from scans.checks import series_rules_readable

    assert series_rules_readable() == []
    bad = tmp_path / "rules.json"
    bad.write_text('{"version": "x"}')
    settings.BRAINAI_SERIES_RULES = bad
    errors = series_rules_readable()
    assert [e.id for e in errors] == ["brainai.E003"] and "lack" in errors[0].msg
