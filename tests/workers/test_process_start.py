"""A worker process imports the configured LLM client library when it starts, so the
import does not come out of the first explanation's time budget."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

# Celery's prefork pool sends worker_process_init in each child before its first task.
CHILD = """
import json, sys
import django
django.setup()
from celery.signals import worker_process_init
import workers.tasks  # noqa: F401  (connects the worker's signal handlers)
before = "llm.openai_compat" in sys.modules
worker_process_init.send(sender="test-worker")
print(json.dumps({"before": before, "after": "llm.openai_compat" in sys.modules}))
"""


def test_a_starting_worker_process_imports_the_llm_client(tmp_path):
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="brainai_site.settings_test",
               BRAINAI_VAR_DIR=str(tmp_path), BRAINAI_TEST_LLM_PROVIDER="openai",
               BRAINAI_OPENAI_BASE_URL="http://127.0.0.1:9/v1", BRAINAI_OPENAI_MODEL="m")
    child = subprocess.run([sys.executable, "-c", CHILD], cwd=Path(__file__).resolve().parents[2],
                           env=env, capture_output=True, text=True, timeout=120)
    assert child.returncode == 0, child.stderr[-4000:]
    assert json.loads(child.stdout.strip().splitlines()[-1]) == {"before": False, "after": True}
