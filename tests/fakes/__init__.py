"""Fakes of the outside world we cannot reach in tests: real HTTP on loopback."""
from tests.fakes.gemini import FakeGemini
from tests.fakes.server import CapturedRequest, FakeServer
from tests.fakes.openai import FakeOpenAI

__all__ = ["CapturedRequest", "FakeGemini", "FakeOpenAI", "FakeServer"]
