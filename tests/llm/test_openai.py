"""An on-prem OpenAI-compatible server (vLLM, Ollama, llama.cpp), faked on loopback."""
import socket
import time

import pytest

from llm import LABELS, PROMPT_VERSION, LLMConfig, StudyFinding, explain, find_problem
from llm.openai_compat import chat_completions_url
from tests.fakes import FakeOpenAI
from tests.builders import seeded_record

MODEL = "llama3.1:8b"


def run(base_url, label="glioma", **options):
    config = LLMConfig(provider="openai", openai_base_url=base_url, openai_model=MODEL,
                       backoff_s=0.01, **{"timeout_s": 5.0, **options})
    return explain(StudyFinding.from_mapping(seeded_record(label)), config)


@pytest.mark.parametrize("label", LABELS)
def test_it_explains_every_label_through_chat_completions(label):
    with FakeOpenAI() as fake:
        explanation = run(fake.base_url + "/v1", label)
    assert explanation.provider == "openai" and explanation.model == MODEL
    assert explanation.prompt_version == PROMPT_VERSION
    assert explanation.fallback_reason is None and explanation.attempts == 1
    assert find_problem(explanation.text, label) is None
    [request] = fake.requests
    assert request.path == "/v1/chat/completions"
    body = request.json()
    assert body["model"] == MODEL and body["stream"] is False
    assert [m["role"] for m in body["messages"]] == ["system", "user"]


@pytest.mark.parametrize("base, url", [
    ("http://vllm:8000/v1", "http://vllm:8000/v1/chat/completions"),
    ("http://vllm:8000", "http://vllm:8000/v1/chat/completions"),
    ("http://ollama:11434/v1/", "http://ollama:11434/v1/chat/completions"),
])
def test_it_accepts_the_base_url_with_or_without_v1(base, url):
    assert chat_completions_url(base) == url


def test_it_strips_the_reasoning_of_a_thinking_model():
    with FakeOpenAI("think") as fake:
        explanation = run(fake.base_url)
    assert explanation.provider == "openai" and "<think>" not in explanation.text


def test_it_retries_after_a_429():
    with FakeOpenAI("429", "ok") as fake:
        explanation = run(fake.base_url)
    assert explanation.provider == "openai" and explanation.attempts == 2


def test_it_retries_a_500_and_then_falls_back():
    with FakeOpenAI(default_mode="500") as fake:
        explanation = run(fake.base_url)
    assert explanation.provider == "template" and explanation.attempts == 3
    assert explanation.fallback_reason == ("http_error: openai (llama3.1:8b) answered HTTP 500; "
                                           "gave up after 3 attempts")


def test_a_hanging_server_costs_no_more_than_the_timeout():
    with FakeOpenAI("hang") as fake:
        started = time.monotonic()
        explanation = run(fake.base_url, timeout_s=0.6)
        elapsed = time.monotonic() - started
    assert elapsed < 0.6 + 0.3
    assert explanation.fallback_reason.startswith("timeout")


def test_a_server_that_trickles_bytes_is_cut_off_at_the_deadline():
    # Each byte arrives well within the socket timeout; only the overall deadline helps.
    with FakeOpenAI("drip") as fake:
        started = time.monotonic()
        explanation = run(fake.base_url, timeout_s=0.8)
        elapsed = time.monotonic() - started
    assert elapsed < 0.8 + 0.3
    assert explanation.provider == "template"
    assert explanation.fallback_reason.startswith("timeout")


def test_malformed_json_falls_back():
    with FakeOpenAI(default_mode="malformed") as fake:
        explanation = run(fake.base_url)
    assert explanation.fallback_reason.startswith("malformed_response")
    assert explanation.attempts == 2


def test_a_content_filter_falls_back():
    with FakeOpenAI(default_mode="blocked_finish") as fake:
        assert run(fake.base_url).fallback_reason.startswith("blocked")


def test_a_contradicting_answer_then_a_good_one_is_used():
    with FakeOpenAI("contradict", "ok") as fake:
        explanation = run(fake.base_url, "notumor")
    assert explanation.provider == "openai" and explanation.attempts == 2
    assert find_problem(explanation.text, "notumor") is None


def test_a_dropped_connection_is_retried():
    with FakeOpenAI("reset", "ok") as fake:
        assert run(fake.base_url).provider == "openai"


def test_a_server_that_is_down_falls_back_quickly():
    with socket.socket() as s:  # a loopback port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    explanation = run(f"http://127.0.0.1:{port}/v1")
    assert time.monotonic() - started < 2
    assert explanation.fallback_reason.startswith("connection_error")
    assert find_problem(explanation.text, "glioma") is None
