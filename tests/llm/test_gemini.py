"""Gemini through the real google-genai client, pointed at a fake server on loopback."""
import time

import pytest

import llm.gemini  # noqa: F401  (import google-genai outside the timed calls)
from llm import LABELS, PROMPT_VERSION, LLMConfig, StudyFinding, explain, find_problem
from llm.validate import NOTICE
from tests.fakes import FakeGemini
from tests.builders import seeded_record

KEY = "test-key-for-the-fake"


def run(fake, label="glioma", **options):
    config = LLMConfig(provider="gemini", gemini_api_key=KEY, gemini_base_url=fake.base_url,
                       backoff_s=0.01, **{"timeout_s": 5.0, **options})
    return explain(StudyFinding.from_mapping(seeded_record(label)), config)


@pytest.mark.parametrize("label", LABELS)
def test_it_explains_every_label_through_generate_content(label):
    with FakeGemini(api_key=KEY) as fake:
        explanation = run(fake, label)
    assert explanation.provider == "gemini"
    assert explanation.model == "gemini-2.5-flash"
    assert explanation.prompt_version == PROMPT_VERSION
    assert explanation.fallback_reason is None and explanation.attempts == 1
    assert find_problem(explanation.text, label) is None
    assert explanation.text.endswith(NOTICE)
    [request] = fake.requests
    assert request.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert request.headers["x-goog-api-key"] == KEY
    body = request.json()
    assert body["systemInstruction"]["parts"][0]["text"].startswith("You explain")
    assert f'"predicted_class": "{label}"' in body["contents"][0]["parts"][0]["text"]


def test_it_uses_the_configured_model():
    with FakeGemini() as fake:
        explanation = run(fake, gemini_model="gemini-2.5-pro")
    assert fake.requests[0].path == "/v1beta/models/gemini-2.5-pro:generateContent"
    assert explanation.model == "gemini-2.5-pro"


def test_it_retries_after_a_429():
    with FakeGemini("429", "ok") as fake:
        explanation = run(fake)
    assert explanation.provider == "gemini" and explanation.attempts == 2
    assert explanation.fallback_reason is None


def test_it_retries_a_500_and_then_falls_back():
    with FakeGemini(default_mode="500") as fake:
        explanation = run(fake)
    assert explanation.provider == "template"
    assert explanation.fallback_reason.startswith("http_error: gemini (gemini-2.5-flash) "
                                                  "answered HTTP 500")
    assert explanation.attempts == 3 == len(fake.requests)
    assert find_problem(explanation.text, "glioma") is None


def test_it_recovers_from_a_503():
    with FakeGemini("503", "503", "ok") as fake:
        assert run(fake).provider == "gemini"


def test_it_does_not_retry_a_client_error():
    with FakeGemini(api_key="another-key") as fake:
        explanation = run(fake)
    assert explanation.fallback_reason.startswith("http_error")
    assert "401" in explanation.fallback_reason and explanation.attempts == 1


def test_a_hanging_server_costs_no_more_than_the_timeout():
    with FakeGemini("hang") as fake:
        started = time.monotonic()
        explanation = run(fake, timeout_s=0.6)
        elapsed = time.monotonic() - started
    assert elapsed < 0.6 + 0.3
    assert explanation.provider == "template"
    assert explanation.fallback_reason.startswith("timeout")
    assert explanation.latency_ms <= 900


def test_malformed_json_is_retried_once_then_falls_back():
    with FakeGemini("malformed", "malformed", "ok") as fake:
        explanation = run(fake)
    assert explanation.fallback_reason.startswith("malformed_response")
    assert explanation.attempts == 2


def test_malformed_json_then_a_good_answer_is_used():
    with FakeGemini("malformed", "ok") as fake:
        assert run(fake).provider == "gemini"


@pytest.mark.parametrize("mode, says", [("blocked", "blockReason SAFETY"),
                                        ("blocked_finish", "finishReason SAFETY")])
def test_a_blocked_answer_falls_back(mode, says):
    with FakeGemini(default_mode=mode) as fake:
        explanation = run(fake)
    assert explanation.fallback_reason.startswith("blocked") and says in explanation.fallback_reason
    assert explanation.attempts == 2


def test_an_empty_answer_falls_back():
    with FakeGemini(default_mode="empty") as fake:
        assert run(fake).fallback_reason.startswith("empty")


def test_a_contradicting_answer_is_retried_with_a_correction():
    with FakeGemini("contradict", "ok") as fake:
        explanation = run(fake)
    assert explanation.provider == "gemini" and explanation.attempts == 2
    retry = fake.requests[1].json()["contents"][0]["parts"][0]["text"]
    assert "previous answer could not be used: it names meningioma" in retry


@pytest.mark.parametrize("label", LABELS)
def test_a_label_contradiction_never_reaches_the_report(label):
    with FakeGemini(default_mode="contradict") as fake:
        explanation = run(fake, label)
    assert explanation.provider == "template"
    assert explanation.fallback_reason.startswith("invalid_output")
    assert find_problem(explanation.text, label) is None
