"""System checks: what must be true before BrainAI serves (``manage.py check``)."""
from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Warning, register


@register("brainai")
def model_weights_present(app_configs=None, **kwargs):
    """The configured (or default) model has its weights (model.keras or weights.npz) and metadata.json."""
    from ml.model import registry
    from ml.errors import ModelNotFoundError

    try:
        info = registry.get(settings.BRAINAI_MODEL)
    except ModelNotFoundError as exc:
        return [Error(f"model weights missing: {exc}",
                      hint="Set BRAINAI_MODEL to one of the available models, or BRAINAI_MODEL_DIR "
                           "to a folder holding <name>/metadata.json and <name>/model.keras (or weights.npz).",
                      id="brainai.E001")]
    except (OSError, ValueError) as exc:
        return [Error(f"model metadata unreadable: {exc}", id="brainai.E002")]
    if not info.model_file.is_file():
        return [Error(f"model weights missing: {info.model_file}", id="brainai.E001")]
    return []


@register("brainai")
def broker_reachable(app_configs=None, **kwargs):
    """Redis answers a PING within a second (a warning: uploads are kept and queued later)."""
    import redis

    try:
        client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_connect_timeout=1, socket_timeout=1)
        client.ping()
    except (redis.RedisError, OSError) as exc:
        return [Warning(f"broker (REDIS_URL) not reachable: {type(exc).__name__}",
                        hint="Start Redis or fix REDIS_URL; analyses wait until it is back "
                             "(then run `manage.py requeue`).",
                        id="brainai.W001")]
    return []


@register("brainai")
def series_rules_readable(app_configs=None, **kwargs):
    """The series rules (BRAINAI_SERIES_RULES, or the shipped file) load: uploads decide series with them."""
    from ml.study import RulesError, load_rules

    try:
        load_rules(settings.BRAINAI_SERIES_RULES)
    except RulesError as exc:
        return [Error(str(exc), hint="Point BRAINAI_SERIES_RULES at a copy of ml/study/series_rules.json, "
                                     "or unset it for the shipped rules.", id="brainai.E003")]
    return []
