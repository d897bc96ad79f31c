"""One contract suite, run against every provider registered in :data:`voxgate.engines.registry.PROVIDERS`.

Each provider gets one entry in :data:`CONTRACT`; a provider registered without one fails
:func:`test_every_registered_provider_has_a_contract_entry`. Local engines are loaded for real; cloud engines are
loaded through the registry with their settings pointed at the fake vendors in ``tests/engines/fake_vendors`` (which
check the wire format and transcribe the received audio with the real local ``whisper/tiny.en``). Every engine gets
the same real speech (``data/en/jfk.flac``) and the same checks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.engines.harness import CLOUDS, Fakes, quick, words_are_sane
from tests.speech import reference, wer
from voxgate.config import Settings
from voxgate.engines.base import Engine
from voxgate.engines.registry import PROVIDERS, load_engine
from voxgate.errors import InvalidRequest
from voxgate.models.catalog import resolve
from voxgate.types import SAMPLE_RATE, Transcript, TranscriptionOptions

LOCAL = "whisper/tiny.en"
"""What the fake vendors transcribe with (the smallest real model: keeps the suite fast)."""


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


CLOUD = {kind.provider: kind for kind in CLOUDS}
"""The cloud providers' fake vendors (tests/engines/harness.py)."""


@pytest.fixture(scope="module", autouse=True)
def fast() -> Iterator[None]:
    """Retry backoff and job polling in milliseconds, not seconds."""
    with quick():
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
def loaded(request: pytest.FixtureRequest, settings: Settings, fakes: Fakes) -> Iterator[Loaded]:
    """Each provider's engine, loaded through the registry (cloud ones against their fake), closed afterwards."""
    provider: str = request.param
    contract = CONTRACT[provider]
    update: dict[str, Any] = {"provider_max_retries": 2, "provider_timeout_seconds": 60.0}
    if provider in CLOUD:
        update |= fakes.cloud(CLOUD[provider], LOCAL).update()
    configured = settings.model_copy(update=update)
    engine = load_engine(resolve(contract.model_id, configured.default_model), configured)
    yield Loaded(provider, contract, configured, engine)
    engine.close()


@pytest.fixture(scope="module")
def engine(loaded: Loaded) -> Engine:
    return loaded.engine


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
        words_are_sane(transcript, within=transcript.duration + 0.1)


def test_text_is_close_to_the_reference(loaded: Loaded, transcript: Transcript, data: Path) -> None:
    if not loaded.contract.expects_english:
        pytest.skip(f"not applicable: {loaded.contract.not_english_reason}")
    error = wer(reference(data, "en/jfk.flac"), transcript.text)
    assert error <= 0.25, f"WER {error:.2f}: {transcript.text!r}"


def test_without_word_timestamps_there_are_no_words(loaded: Loaded, jfk: np.ndarray) -> None:
    """Only the words go: the segments and their text stay."""
    t = loaded.engine.transcribe(jfk, loaded.options(word_timestamps=False))
    _structure_is_sane(t, loaded.engine.model_id, jfk)
    assert t.text.strip()
    assert t.words == ()
    assert t.segments
    if loaded.contract.expects_english:
        assert "country" in t.text


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
