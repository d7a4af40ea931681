"""explain(): every explanation agrees with its label, and none holds a report back."""
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

import llm.gemini  # noqa: F401  (import google-genai outside the timed calls)
from llm import LABELS, LLMConfig, StudyFinding, explain, find_problem
from tests.fakes import FakeGemini, FakeOpenAI
from tests.builders import seeded_record

MODES = ("ok", "contradict", "malformed", "blocked_finish", "empty", "500", "429")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("provider", ("gemini", "openai"))
def test_every_explanation_agrees_with_its_label(provider, mode):
    fake = FakeGemini(default_mode=mode) if provider == "gemini" else FakeOpenAI(default_mode=mode)
    with fake:
        config = LLMConfig(provider=provider, gemini_api_key="k", gemini_base_url=fake.base_url,
                           openai_base_url=fake.base_url, openai_model="m", timeout_s=5.0,
                           backoff_s=0.01)
        for label in LABELS:
            explanation = explain(StudyFinding.from_mapping(seeded_record(label)), config)
            assert find_problem(explanation.text, label) is None
            assert (explanation.provider == provider) == (mode == "ok")
            assert (explanation.fallback_reason is None) == (mode == "ok")


def test_a_response_the_client_cannot_parse_still_gives_a_report():
    def a_list(request, body):  # valid JSON, wrong shape
        return 200, {"Content-Type": "application/json"}, b"[1, 2, 3]"

    with FakeGemini(default_mode=a_list) as fake:
        config = LLMConfig(provider="gemini", gemini_api_key="k", gemini_base_url=fake.base_url,
                           backoff_s=0.01)
        explanation = explain(StudyFinding.from_mapping(seeded_record("glioma")), config)
    assert explanation.provider == "template" and explanation.fallback_reason


def test_retries_stop_when_the_budget_would_run_out():
    with FakeOpenAI(default_mode="503") as fake:
        config = LLMConfig(provider="openai", openai_base_url=fake.base_url, openai_model="m",
                           timeout_s=0.5, backoff_s=2.0, max_attempts=5)
        started = time.monotonic()
        explanation = explain(StudyFinding.from_mapping(seeded_record("glioma")), config)
    assert time.monotonic() - started < 0.5
    assert explanation.attempts == 1
    assert "no time left to retry" in explanation.fallback_reason


def test_it_records_what_is_stored_with_the_report():
    fake = FakeOpenAI()

    def slow_ok(request, body):  # a server that thinks for 200 ms, then answers
        time.sleep(0.2)
        return fake.answer("ok", request, body)

    fake.default_mode = slow_ok
    with fake:
        config = LLMConfig(provider="openai", openai_base_url=fake.base_url, openai_model="m")
        started = time.monotonic()
        stored = explain(StudyFinding.from_mapping(seeded_record("meningioma")), config).as_dict()
        waited_ms = (time.monotonic() - started) * 1000
    assert set(stored) == {"text", "provider", "model", "prompt_version", "latency_ms",
                           "fallback_reason", "attempts"}
    assert 200 <= stored["latency_ms"] <= waited_ms + 1 and stored["attempts"] == 1


WARM_UP_CHILD = """
import json, sys
from llm import LLMConfig, warm_up
clients = ("llm.gemini", "llm.openai_compat")
before = [m for m in clients if m in sys.modules]
warm_up(LLMConfig(provider=sys.argv[1], gemini_api_key="k",
                  openai_base_url="http://127.0.0.1:9/v1", openai_model="m"))
print(json.dumps({"before": before, "after": [m for m in clients if m in sys.modules]}))
"""


@pytest.mark.parametrize("provider, imported", [("gemini", ["llm.gemini"]),
                                                ("openai", ["llm.openai_compat"]),
                                                ("template", [])])
def test_warm_up_imports_the_configured_client_library(provider, imported):
    child = subprocess.run([sys.executable, "-c", WARM_UP_CHILD, provider],
                           cwd=Path(__file__).resolve().parents[2], capture_output=True,
                           text=True, timeout=120)
    assert child.returncode == 0, child.stderr[-4000:]
    out = json.loads(child.stdout.strip().splitlines()[-1])
    assert out == {"before": [], "after": imported}
