"""One contract suite, run against every provider registered in :data:`voxgate.engines.registry.PROVIDERS`.

Each provider gets one entry in :data:`CONTRACT`; a provider registered without one fails
:func:`test_every_registered_provider_has_a_contract_entry`. Local engines are loaded for real; cloud engines are
loaded through the registry with their settings pointed at the fake vendors in ``tests/engines/fake_vendors`` (which
check the wire format and transcribe the received audio with the real local ``whisper/tiny.en``). Every engine gets
the same real speech (``data/en/jfk.flac``) and the same checks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import SecretStr

from tests.conftest import LiveServer
from tests.engines.fake_vendors import FakeVendor, assemblyai_server, deepgram_server, openai_server, soniox_server
from tests.speech import reference, wer
from voxgate.audio.decode import decode
from voxgate.config import Settings
from voxgate.engines import remote
from voxgate.engines.assemblyai import AssemblyAIEngine
from voxgate.engines.base import Engine
from voxgate.engines.registry import PROVIDERS, load_engine
from voxgate.engines.soniox import SonioxEngine
from voxgate.errors import InvalidRequest
from voxgate.models.catalog import resolve
from voxgate.service import Service
from voxgate.types import SAMPLE_RATE, Transcript, TranscriptionOptions

LOCAL = "whisper/tiny.en"
"""What the fake vendors transcribe with (the smallest real model: keeps the suite fast)."""

OPENAI_KEY = "sk-test-0123456789"
GROQ_KEY = "gsk_test_0123456789"
DEEPGRAM_KEY = "dg-test-0123456789abcdef"


@dataclass(frozen=True)
class Contract:
    """What one provider is held to."""

    model_id: str
    remote: bool
    """A cloud provider: ``capabilities.remote`` must say so (and must not, for a local one)."""
    language: str | None = "en"
    """The language the contract's requests name (None: let the engine use its own)."""
    expects_english: bool = True
    """Whether the engine can be expected to transcribe the English reference close to the reference text."""
    not_english_reason: str = ""


CONTRACT: dict[str, Contract] = {
    "whisper": Contract("whisper/tiny.en", remote=False),
    "vosk": Contract(
        "vosk/ko",
        remote=False,
        language=None,
        expects_english=False,
        not_english_reason="vosk/ko is a Korean-only model: English speech gives Korean nonsense, so only the "
        "structure of its transcript is checked, not its text",
    ),
    "openai": Contract("openai/whisper-1", remote=True),
    "groq": Contract("groq/whisper-large-v3", remote=True),
    "deepgram": Contract("deepgram/nova-3", remote=True),
    "assemblyai": Contract("assemblyai/universal-2", remote=True),
    "soniox": Contract("soniox/stt-async-v5", remote=True),
}

REGISTERED = frozenset(PROVIDERS)
"""The providers registered when this module was collected (other tests may register a temporary one later)."""


def test_every_registered_provider_has_a_contract_entry() -> None:
    assert set(CONTRACT) == REGISTERED, (
        f"providers without a contract entry: {sorted(REGISTERED - set(CONTRACT))}; "
        f"contract entries for unregistered providers: {sorted(set(CONTRACT) - REGISTERED)}"
    )
    for provider, contract in CONTRACT.items():
        assert contract.model_id.split("/", 1)[0] == provider


# -- fakes: one per cloud provider, started only when its engine's tests run, shared by them ----------------------


@contextlib.contextmanager
def _openai_like(service: Service, key: str, **app: Any) -> Iterator[str]:
    vendor = FakeVendor(service.engine(LOCAL), api_key=key)
    with LiveServer(openai_server.create_app(vendor, **app)) as server:
        yield server.url


@contextlib.contextmanager
def _openai(service: Service) -> Iterator[dict[str, Any]]:
    with _openai_like(service, OPENAI_KEY) as url:
        yield {"openai_api_key": SecretStr(OPENAI_KEY), "openai_base_url": f"{url}/v1"}


@contextlib.contextmanager
def _groq(service: Service) -> Iterator[dict[str, Any]]:
    with _openai_like(service, GROQ_KEY, prefix="/openai/v1", models=openai_server.GROQ_MODELS) as url:
        yield {"groq_api_key": SecretStr(GROQ_KEY), "groq_base_url": f"{url}/openai/v1"}


@contextlib.contextmanager
def _deepgram(service: Service) -> Iterator[dict[str, Any]]:
    vendor = FakeVendor(service.engine(LOCAL), api_key=DEEPGRAM_KEY)
    with LiveServer(deepgram_server.create_app(vendor)) as server:
        yield {"deepgram_api_key": SecretStr(DEEPGRAM_KEY), "deepgram_base_url": server.url}


@contextlib.contextmanager
def _assemblyai(service: Service) -> Iterator[dict[str, Any]]:
    fake = assemblyai_server.FakeAssemblyAI(assemblyai_server.LocalRecognizer(service.engine(LOCAL)))
    try:
        with LiveServer(fake.app) as server:
            yield {"assemblyai_api_key": SecretStr(assemblyai_server.API_KEY), "assemblyai_base_url": server.url}
    finally:
        fake.close()


@contextlib.contextmanager
def _soniox(service: Service) -> Iterator[dict[str, Any]]:
    fake = soniox_server.FakeSoniox(assemblyai_server.LocalRecognizer(service.engine(LOCAL)))
    try:
        with LiveServer(fake.app) as server:
            yield {"soniox_api_key": SecretStr(soniox_server.API_KEY), "soniox_base_url": server.url}
    finally:
        fake.close()


FAKES: dict[str, Callable[[Service], contextlib.AbstractContextManager[dict[str, Any]]]] = {
    "openai": _openai,
    "groq": _groq,
    "deepgram": _deepgram,
    "assemblyai": _assemblyai,
    "soniox": _soniox,
}


@pytest.fixture(scope="module", autouse=True)
def fast() -> Iterator[None]:
    """Retry backoff and job polling in milliseconds, not seconds."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(remote, "_BACKOFF_BASE", 0.001)
        for cls in (AssemblyAIEngine, SonioxEngine):
            mp.setattr(cls, "poll_interval", 0.02)
            mp.setattr(cls, "poll_interval_max", 0.05)
        yield


@dataclass(frozen=True)
class Loaded:
    provider: str
    contract: Contract
    settings: Settings
    engine: Engine

    def options(self, **update: Any) -> TranscriptionOptions:
        return replace(TranscriptionOptions(language=self.contract.language), **update)

    def load(self) -> Engine:
        """Another engine for the same model, as the registry makes it."""
        return load_engine(resolve(self.contract.model_id, self.settings.default_model), self.settings)


@pytest.fixture(scope="module", params=sorted(CONTRACT))
def loaded(request: pytest.FixtureRequest, settings: Settings, service: Service) -> Iterator[Loaded]:
    """Each provider's engine, loaded through the registry (cloud ones against their fake), closed afterwards."""
    provider: str = request.param
    contract = CONTRACT[provider]
    with contextlib.ExitStack() as stack:
        update: dict[str, Any] = {"provider_max_retries": 2, "provider_timeout_seconds": 60.0}
        if provider in FAKES:
            update |= stack.enter_context(FAKES[provider](service))
        configured = settings.model_copy(update=update)
        engine = load_engine(resolve(contract.model_id, configured.default_model), configured)
        yield Loaded(provider, contract, configured, engine)
        engine.close()


@pytest.fixture(scope="module")
def engine(loaded: Loaded) -> Engine:
    return loaded.engine


@pytest.fixture(scope="module")
def jfk(data: Path) -> np.ndarray:
    return decode(data / "en" / "jfk.flac")


@pytest.fixture(scope="module")
def transcript(loaded: Loaded, jfk: np.ndarray) -> Transcript:
    """The engine's transcript of the JFK clip with word times (once per engine)."""
    return loaded.engine.transcribe(jfk, loaded.options(word_timestamps=True))


def _duration(audio: np.ndarray) -> float:
    return len(audio) / SAMPLE_RATE


def _structure_is_sane(t: Transcript, model_id: str, audio: np.ndarray) -> None:
    assert isinstance(t, Transcript)
    assert t.model_id == model_id
    assert t.duration == pytest.approx(_duration(audio), abs=0.1)


def _words_are_sane(t: Transcript) -> None:
    assert t.words, "no words"
    for w in t.words:
        assert w.word, w
        assert w.word.strip() == w.word, w
        assert 0.0 <= w.start <= w.end <= t.duration + 0.1, w
        assert 0.0 <= w.confidence <= 1.0, w
    starts = [w.start for w in t.words]
    assert starts == sorted(starts)


# -- the contract ----------------------------------------------------------------------------------------------------


def test_is_an_engine(loaded: Loaded) -> None:
    assert isinstance(loaded.engine, Engine)
    assert loaded.engine.model_id == loaded.contract.model_id


def test_remote_exactly_for_cloud_providers(loaded: Loaded) -> None:
    assert loaded.engine.capabilities.remote is loaded.contract.remote
    assert PROVIDERS[loaded.provider].remote is loaded.contract.remote


def test_transcribes_real_speech(loaded: Loaded, transcript: Transcript, jfk: np.ndarray) -> None:
    _structure_is_sane(transcript, loaded.engine.model_id, jfk)
    assert transcript.text.strip(), "empty transcript of 11 s of speech"
    if loaded.engine.capabilities.word_timestamps:
        _words_are_sane(transcript)


def test_text_is_close_to_the_reference(loaded: Loaded, transcript: Transcript, data: Path) -> None:
    if not loaded.contract.expects_english:
        pytest.skip(f"not applicable: {loaded.contract.not_english_reason}")
    error = wer(reference(data, "en/jfk.flac"), transcript.text)
    assert error <= 0.25, f"WER {error:.2f}: {transcript.text!r}"


def test_without_word_timestamps_there_are_no_words(loaded: Loaded, jfk: np.ndarray) -> None:
    t = loaded.engine.transcribe(jfk, loaded.options(word_timestamps=False))
    _structure_is_sane(t, loaded.engine.model_id, jfk)
    assert t.text.strip()
    assert t.words == ()


def test_transcribe_utterance(loaded: Loaded, jfk: np.ndarray) -> None:
    t = loaded.engine.transcribe_utterance(jfk, loaded.options())
    _structure_is_sane(t, loaded.engine.model_id, jfk)
    assert t.text.strip()


def test_transcribe_batch(loaded: Loaded, jfk: np.ndarray) -> None:
    results = loaded.engine.transcribe_batch([(jfk, loaded.options())])
    assert isinstance(results, list)
    assert len(results) == 1
    _structure_is_sane(results[0], loaded.engine.model_id, jfk)
    assert results[0].text.strip()


def test_an_unsupported_task_is_refused(loaded: Loaded, jfk: np.ndarray) -> None:
    if loaded.engine.capabilities.translate:
        pytest.skip(f"{loaded.engine.model_id} translates")
    with pytest.raises(InvalidRequest):
        loaded.engine.transcribe(jfk, loaded.options(task="translate"))


def test_close(loaded: Loaded) -> None:
    """A second engine for the same model closes cleanly (the shared one is closed when its tests are done)."""
    other = loaded.load()
    assert other.model_id == loaded.contract.model_id
    other.close()
