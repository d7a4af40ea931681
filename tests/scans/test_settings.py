"""Configuration from the environment fails loudly, naming the variable."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from brainai_site.env import env_bool, env_int, env_list, env_url

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("helper, value", [(env_bool, "maybe"), (env_int, "ten"), (env_list, " , ")])
def test_a_bad_value_names_the_variable(helper, value):
    with pytest.raises(ImproperlyConfigured, match="BRAINAI_X"):
        helper("BRAINAI_X", None if helper is env_bool else 1, environ={"BRAINAI_X": value})


def test_defaults_apply_when_a_variable_is_missing():
    assert env_bool("DJANGO_DEBUG", False, environ={}) is False
    assert env_int("BRAINAI_BATCH_SIZE", 32, environ={}) == 32
    assert env_list("ALLOWED_HOSTS", ["a"], environ={"ALLOWED_HOSTS": "x.org, y.org"}) == ["x.org", "y.org"]


def test_a_bad_url_scheme_is_named_without_echoing_secrets():
    with pytest.raises(ImproperlyConfigured) as caught:
        env_url("DATABASE_URL", "sqlite://", environ={"DATABASE_URL": "mysql://u:hunter2@db/x"},
                schemes=("sqlite", "postgres"))
    assert "DATABASE_URL" in str(caught.value) and "hunter2" not in str(caught.value)


def test_an_integer_below_its_minimum_is_refused():
    with pytest.raises(ImproperlyConfigured, match="BRAINAI_BATCH_SIZE must be at least 1"):
        env_int("BRAINAI_BATCH_SIZE", 32, environ={"BRAINAI_BATCH_SIZE": "0"}, minimum=1)


def _start_django(**env) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("BRAINAI_", "DJANGO_", "GEMINI_"))}
    environ.update(DJANGO_SETTINGS_MODULE="brainai_site.settings", **env)
    return subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT, env=environ,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("variable, value", [
    ("DJANGO_DEBUG", "perhaps"),
    ("BRAINAI_BATCH_SIZE", "lots"),
    ("REDIS_URL", "http://localhost:6379"),
    ("BRAINAI_LLM_PROVIDER", "oracle"),
    ("BRAINAI_LLM_TIMEOUT_S", "-3"),
    ("BRAINAI_DICOM_GROUP_BY", "sender"),
])
def test_start_up_stops_on_a_bad_value_and_names_it(variable, value, tmp_path):
    done = _start_django(**{variable: value, "BRAINAI_VAR_DIR": str(tmp_path)})
    assert done.returncode != 0
    assert "ImproperlyConfigured" in done.stderr and variable in done.stderr


def test_start_up_works_with_no_variables_at_all(tmp_path):
    done = _start_django(BRAINAI_VAR_DIR=str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "secret_key").exists()  # generated once for the embedded mode
