"""LLMConfig.from_env: defaults, and bad values named at start-up."""
import pytest

from llm.config import DEFAULT_GEMINI_MODEL, DEFAULT_TIMEOUT_S, LLMConfig

KEY = "AIza-test-key-not-real"


def test_it_defaults_to_the_template_without_a_key():
    config = LLMConfig.from_env({})
    assert config.provider == "template"
    assert config.timeout_s == DEFAULT_TIMEOUT_S
    assert config.send_images is False


def test_it_defaults_to_gemini_when_a_key_is_set():
    config = LLMConfig.from_env({"GEMINI_API_KEY": KEY})
    assert config.provider == "gemini"
    assert config.gemini_model == DEFAULT_GEMINI_MODEL
    assert config.gemini_base_url is None


def test_it_reads_every_variable():
    config = LLMConfig.from_env({
        "BRAINAI_LLM_PROVIDER": "openai",
        "GEMINI_API_KEY": KEY,
        "BRAINAI_GEMINI_MODEL": "gemini-2.5-pro",
        "BRAINAI_GEMINI_BASE_URL": "https://proxy.clinic.local/gemini/",
        "BRAINAI_OPENAI_BASE_URL": "http://vllm:8000/v1",
        "BRAINAI_OPENAI_MODEL": "meta-llama/Llama-3.1-8B-Instruct",
        "BRAINAI_LLM_TIMEOUT_S": "7.5",
        "BRAINAI_LLM_SEND_IMAGES": "on",
    })
    assert config.provider == "openai"
    assert config.gemini_model == "gemini-2.5-pro"
    assert config.gemini_base_url == "https://proxy.clinic.local/gemini"
    assert config.openai_base_url == "http://vllm:8000/v1"
    assert config.openai_model == "meta-llama/Llama-3.1-8B-Instruct"
    assert config.model == "meta-llama/Llama-3.1-8B-Instruct"
    assert config.timeout_s == 7.5
    assert config.send_images is True


def test_the_template_can_be_chosen_even_with_a_key():
    config = LLMConfig.from_env({"GEMINI_API_KEY": KEY, "BRAINAI_LLM_PROVIDER": "Template"})
    assert config.provider == "template"


@pytest.mark.parametrize("env, variable", [
    ({"BRAINAI_LLM_PROVIDER": "chatgpt"}, "BRAINAI_LLM_PROVIDER"),
    ({"BRAINAI_LLM_PROVIDER": "gemini"}, "GEMINI_API_KEY"),
    ({"BRAINAI_LLM_PROVIDER": "openai", "BRAINAI_OPENAI_MODEL": "llama3.1:8b"},
     "BRAINAI_OPENAI_BASE_URL"),
    ({"BRAINAI_LLM_PROVIDER": "openai", "BRAINAI_OPENAI_BASE_URL": "http://127.0.0.1:11434/v1"},
     "BRAINAI_OPENAI_MODEL"),
    ({"BRAINAI_OPENAI_BASE_URL": "ftp://vllm/v1"}, "BRAINAI_OPENAI_BASE_URL"),
    ({"BRAINAI_GEMINI_BASE_URL": "not a url"}, "BRAINAI_GEMINI_BASE_URL"),
    ({"BRAINAI_GEMINI_BASE_URL": "https://proxy/?key=x"}, "BRAINAI_GEMINI_BASE_URL"),
    ({"BRAINAI_GEMINI_MODEL": "gemini 2.5"}, "BRAINAI_GEMINI_MODEL"),
    ({"BRAINAI_GEMINI_MODEL": "../../files"}, "BRAINAI_GEMINI_MODEL"),
    ({"BRAINAI_OPENAI_MODEL": "llama?x=1"}, "BRAINAI_OPENAI_MODEL"),
    ({"BRAINAI_LLM_TIMEOUT_S": "soon"}, "BRAINAI_LLM_TIMEOUT_S"),
    ({"BRAINAI_LLM_TIMEOUT_S": "0"}, "BRAINAI_LLM_TIMEOUT_S"),
    ({"BRAINAI_LLM_TIMEOUT_S": "-3"}, "BRAINAI_LLM_TIMEOUT_S"),
    ({"BRAINAI_LLM_TIMEOUT_S": "nan"}, "BRAINAI_LLM_TIMEOUT_S"),
    ({"BRAINAI_LLM_TIMEOUT_S": "86400"}, "BRAINAI_LLM_TIMEOUT_S"),
    ({"BRAINAI_LLM_SEND_IMAGES": "maybe"}, "BRAINAI_LLM_SEND_IMAGES"),
])
def test_a_bad_value_names_its_variable(env, variable):
    with pytest.raises(ValueError, match=variable):
        LLMConfig.from_env(env)


@pytest.mark.parametrize("raw, expected", [("1", True), ("TRUE", True), ("yes", True),
                                           ("0", False), ("off", False), ("", False)])
def test_it_reads_send_images_as_a_flag(raw, expected):
    assert LLMConfig.from_env({"BRAINAI_LLM_SEND_IMAGES": raw}).send_images is expected


def test_it_never_shows_the_api_key():
    config = LLMConfig.from_env({"GEMINI_API_KEY": KEY})
    assert KEY not in repr(config)
    with pytest.raises(ValueError) as error:
        LLMConfig.from_env({"GEMINI_API_KEY": KEY, "BRAINAI_LLM_TIMEOUT_S": "x"})
    assert KEY not in str(error.value)


def test_it_reads_os_environ_by_default(monkeypatch):
    monkeypatch.setenv("BRAINAI_LLM_PROVIDER", "template")
    monkeypatch.setenv("BRAINAI_LLM_TIMEOUT_S", "3")
    assert LLMConfig.from_env().timeout_s == 3.0


def test_direct_construction_is_checked_too():
    with pytest.raises(ValueError, match="timeout_s"):
        LLMConfig(provider="template", timeout_s=0)
    with pytest.raises(ValueError, match="gemini_api_key"):
        LLMConfig(provider="gemini")
