"""What only Whisper's models do (the contract every engine keeps is in ``test_contract.py``)."""

from __future__ import annotations

import numpy as np
import pytest

from voxgate.engines.whisper import WhisperEngine, pool_speech_frames
from voxgate.errors import InvalidRequest
from voxgate.service import Service
from voxgate.types import SAMPLE_RATE, TranscriptionOptions


def test_english_only_model_refuses_other_languages_and_translation(service: Service, jfk: np.ndarray) -> None:
    tiny = service.engine("whisper/tiny.en")
    with pytest.raises(InvalidRequest, match="English only"):
        tiny.transcribe(jfk, TranscriptionOptions(language="de"))
    with pytest.raises(InvalidRequest, match="cannot translate"):
        tiny.transcribe(jfk, TranscriptionOptions(task="translate"))


def test_one_encoder_pass_gives_the_language_and_a_voice_embedding(service: Service, jfk: np.ndarray) -> None:
    base = service.engine("whisper/base")
    assert isinstance(base, WhisperEngine)
    heard = base.listen(jfk)
    assert heard.language == base.detect_language(jfk)  # the same pass as language ID alone
    assert heard.language[0].code == "en"
    assert heard.embedding.shape == (2 * 512,)  # mean and standard deviation of base's 512-wide hidden states
    assert np.all(np.isfinite(heard.embedding))
    assert np.all(heard.embedding[512:] > 0)
    tiny = service.engine("whisper/tiny.en")
    assert isinstance(tiny, WhisperEngine)
    english = tiny.listen(jfk)
    assert [(s.code, s.probability) for s in english.language] == [("en", 1.0)]
    assert english.embedding.shape == (2 * 384,)


def test_the_voice_embedding_pools_speech_not_silence(service: Service, jfk: np.ndarray) -> None:
    """Two seconds of silence either side of the speech: the pooled speech frames stay close to the speech's own,
    closer than a pool of every frame the clip has (which lets the silence in)."""
    base = service.engine("whisper/base")
    assert isinstance(base, WhisperEngine)
    speech = jfk[: 6 * SAMPLE_RATE]
    quiet = np.zeros(2 * SAMPLE_RATE, dtype=np.float32)
    padded = np.concatenate([quiet, speech, quiet])
    alone = base.listen(speech).embedding[:512]
    pooled = base.listen(padded).embedding[:512]
    mel = base.model.feature_extractor(padded)[..., :-1]
    hidden = np.asarray(base.model.encode(mel[None]))[0][: mel.shape[1] // 2]
    everything = hidden.mean(axis=0)

    def cosine(a: np.ndarray, b: np.ndarray) -> float:
        return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))

    assert cosine(alone, pooled) > cosine(alone, everything)
    assert cosine(alone, pooled) > 0.85
    # The rule itself: frames 5.. sit in "silence" (more than 30 dB under the loudest), so only 0..4 are pooled.
    states = np.ones((10, 4), dtype=np.float32)
    states[5:] = 3.0
    levels = np.zeros((80, 20), dtype=np.float32)
    levels[:, 10:] = -1.5
    assert pool_speech_frames(states, levels, 20 * 160).tolist() == [1.0] * 4 + [0.0] * 4
