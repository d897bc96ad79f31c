"""The cloud adapters against the REAL vendors, with real keys and real speech.

Deselected by default (``-m 'not live ...'`` in pytest's ``addopts``); run them with
``pytest -m live tests/engines/test_live.py``. Each vendor's tests run only when its key is configured
(``VOXGATE_OPENAI_API_KEY``, ``VOXGATE_GROQ_API_KEY``, ``VOXGATE_DEEPGRAM_API_KEY``, read through
:class:`~voxgate.config.Settings` like everything else) and are skipped, saying which variable is missing, otherwise.
A run costs a few cents: a handful of clips of at most 11 s.

The checks are the ones the fake-vendor tests make (text within WER 0.2 of the reference, sane word times, language
identified, custom vocabulary honoured, unsupported options warned about, a refused key mapped to
:class:`~voxgate.errors.ProviderUnauthorized`), so a fake that drifted from the real wire format shows up here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from tests.engines.harness import words_are_sane
from tests.speech import reference, wer
from voxgate.config import Settings
from voxgate.engines.registry import load_engine
from voxgate.engines.remote import RemoteEngine
from voxgate.errors import ProviderUnauthorized
from voxgate.models.catalog import resolve
from voxgate.types import Audio, Transcript, TranscriptionOptions

pytestmark = pytest.mark.live

Make = Callable[..., RemoteEngine]


@pytest.fixture
def make(settings: Settings) -> Iterator[Make]:
    """A real engine for ``model_id``, or a skip naming the missing key variable."""
    engines: list[RemoteEngine] = []

    def build(model_id: str, **update: Any) -> RemoteEngine:
        spec = resolve(model_id, settings.default_model)
        config = settings.provider(spec.provider)
        if not config.api_key:
            pytest.skip(f"{config.key_variable} is not set: live {spec.provider} tests need a real key")
        engine = load_engine(spec, settings.model_copy(update={"provider_timeout_seconds": 120.0, **update}))
        assert isinstance(engine, RemoteEngine)
        engines.append(engine)
        return engine

    yield build
    for engine in engines:
        engine.close()


def jfk_words_are_sane(t: Transcript) -> None:
    words_are_sane(t, confident=True)
    americans = next(w for w in t.words if w.word.lower().startswith("americans"))
    assert 1.0 < americans.start < 2.6
    assert t.words[-1].end > 9.0


WORD_MODELS = ["openai/whisper-1", "groq/whisper-large-v3-turbo", "deepgram/nova-3", "deepgram/nova-2"]
TEXT_MODELS = ["openai/gpt-4o-mini-transcribe", "openai/gpt-4o-transcribe"]
KEY_CHECKS = {"openai": "openai/whisper-1", "groq": "groq/whisper-large-v3-turbo", "deepgram": "deepgram/nova-3"}


@pytest.mark.parametrize("model_id", WORD_MODELS)
def test_real_speech_with_words(make: Make, jfk: Audio, data: Path, model_id: str) -> None:
    t = make(model_id).transcribe(jfk, TranscriptionOptions(language="en"))
    assert wer(reference(data, "en/jfk.flac"), t.text) <= 0.2, t.text
    assert t.language == "en"
    assert t.warnings == ()
    jfk_words_are_sane(t)


@pytest.mark.parametrize("model_id", WORD_MODELS)
def test_language_detection(make: Make, jfk: Audio, model_id: str) -> None:
    t = make(model_id).transcribe(jfk, TranscriptionOptions(word_timestamps=False))
    assert t.language == "en"
    assert t.words == ()
    assert "country" in t.text.lower()


@pytest.mark.parametrize("model_id", TEXT_MODELS)
def test_text_only_models(make: Make, jfk: Audio, data: Path, model_id: str) -> None:
    t = make(model_id).transcribe(jfk, TranscriptionOptions(language="en"))
    assert wer(reference(data, "en/jfk.flac"), t.text) <= 0.2, t.text
    assert t.words == ()
    assert t.warnings == (f"word timestamps are not available from {model_id}",)


@pytest.mark.parametrize("model_id", ["openai/whisper-1", "openai/gpt-4o-transcribe", "deepgram/nova-3"])
def test_custom_vocabulary(make: Make, comfyui: Audio, model_id: str) -> None:
    t = make(model_id).transcribe(comfyui, TranscriptionOptions(language="en", prompts=("ComfyUI",)))
    assert "ComfyUI" in t.text, t.text


def test_deepgram_warns_about_a_free_text_prompt(make: Make, jfk: Audio) -> None:
    t = make("deepgram/nova-3").transcribe(jfk, TranscriptionOptions(language="en", prompt="A speech."))
    assert t.warnings == ("deepgram has no free-text prompt; use prompts (keyterms)",)
    assert "country" in t.text.lower()


@pytest.mark.parametrize("provider", sorted(KEY_CHECKS))
def test_a_refused_key(make: Make, jfk: Audio, provider: str) -> None:
    make(KEY_CHECKS[provider])  # skips unless this provider is configured at all
    wrong = make(KEY_CHECKS[provider], **{f"{provider}_api_key": SecretStr("voxgate-invalid-key-0000")})
    with pytest.raises(ProviderUnauthorized, match=f"VOXGATE_{provider.upper()}_API_KEY"):
        wrong.transcribe(jfk[:16_000], TranscriptionOptions(language="en"))
