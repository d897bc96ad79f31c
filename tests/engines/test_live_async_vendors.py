"""assemblyai/* and soniox/* against the real vendors, with real keys: ``pytest -m live``.

Each test needs its vendor's key in the environment (``VOXGATE_ASSEMBLYAI_API_KEY``, ``VOXGATE_SONIOX_API_KEY``) and
is skipped, saying which variable is missing, without it. Base URLs come from the environment too
(``VOXGATE_ASSEMBLYAI_BASE_URL``, ``VOXGATE_SONIOX_BASE_URL``), e.g. for a regional endpoint. These tests upload real
speech and are billed by the vendors (a few cents a run).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pydantic import SecretStr

from tests.engines.harness import words_are_sane
from tests.speech import normalise, reference, wer
from voxgate.audio.decode import decode
from voxgate.config import Settings
from voxgate.engines.base import Engine
from voxgate.engines.registry import load_engine
from voxgate.errors import ProviderUnauthorized
from voxgate.models.catalog import resolve
from voxgate.types import SAMPLE_RATE, TranscriptionOptions

pytestmark = pytest.mark.live

MODELS = ["assemblyai/universal-3-pro", "assemblyai/universal-2", "soniox/stt-async-v3"]


def vendor_settings(model_id: str) -> Settings:
    """The environment's settings, or a skip naming the missing key."""
    provider = model_id.partition("/")[0]
    settings = Settings(preload=[])
    if settings.provider(provider).api_key is None:
        pytest.skip(f"set VOXGATE_{provider.upper()}_API_KEY to run the live {provider} tests")
    return settings


@pytest.fixture(params=MODELS)
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    model_id: str = request.param
    settings = vendor_settings(model_id)
    engine = load_engine(resolve(model_id, settings.default_model), settings)
    yield engine
    engine.close()


def test_transcribes_real_speech(engine: Engine, data: Path, jfk: np.ndarray) -> None:
    t = engine.transcribe(jfk, TranscriptionOptions(language="en"))
    assert wer(reference(data, "en/jfk.flac"), t.text) <= 0.2
    assert t.language == "en"
    assert t.warnings == ()
    assert t.duration == pytest.approx(len(jfk) / SAMPLE_RATE)
    words_are_sane(t)
    americans = next(w for w in t.words if normalise(w.word).startswith("americans"))
    assert 1.0 < americans.start < 2.6
    assert t.words[-1].end > 9.0


def test_detects_the_language(engine: Engine, data: Path) -> None:
    t = engine.transcribe(decode(data / "en" / "spk1_snt1.wav"), TranscriptionOptions())
    assert t.language == "en"
    assert wer(reference(data, "en/spk1_snt1.wav"), t.text) <= 0.2


def test_vocabulary(engine: Engine, data: Path) -> None:
    t = engine.transcribe(
        decode(data / "vocabulary" / "comfyui.mp3"), TranscriptionOptions(language="en", prompts=("ComfyUI",))
    )
    assert "ComfyUI" in t.text
    assert t.warnings == ()


@pytest.mark.parametrize("model_id", ["assemblyai/universal-3-pro", "soniox/stt-async-v3"])
def test_a_wrong_key_is_provider_unauthorized(model_id: str, data: Path) -> None:
    settings = vendor_settings(model_id)  # only where the vendor is reachable with a real key
    provider = model_id.partition("/")[0]
    wrong = settings.model_copy(update={f"{provider}_api_key": SecretStr("voxgate-live-test-wrong-key")})
    engine = load_engine(resolve(model_id, settings.default_model), wrong)
    try:
        with pytest.raises(ProviderUnauthorized):
            engine.transcribe(decode(data / "en" / "spk2_snt2.wav"), TranscriptionOptions(language="en"))
    finally:
        engine.close()
