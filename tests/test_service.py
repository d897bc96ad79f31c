from __future__ import annotations

from pathlib import Path

import anyio.to_thread
import av
import numpy as np
import pytest
from threadpoolctl import threadpool_info

from tests.speech import conversation, speaker_accuracy
from voxgate.audio.decode import decode
from voxgate.audio.pcm import PcmEncoding, encode_linear16
from voxgate.config import Settings
from voxgate.errors import ModelNotFound
from voxgate.files import RawAudio
from voxgate.service import Service
from voxgate.types import SAMPLE_RATE, DiarizationOptions, TranscriptionOptions


def _write_flac(path: Path, audio: np.ndarray) -> None:
    pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
    with av.open(str(path), "w", format="flac") as out:
        stream = out.add_stream("flac", rate=SAMPLE_RATE, layout="mono")
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def test_long_file_windows_keep_timestamps_right(tmp_path: Path, data: Path, settings: Settings) -> None:
    """Three copies of the JFK clip, 4 s of silence between, cut into 15 s windows: each copy's words land at its
    own offset, exactly as if the file had been transcribed in one piece."""
    jfk = decode(data / "en" / "jfk.flac")
    gap = np.zeros(4 * SAMPLE_RATE, dtype=np.float32)
    copy_starts = [0.0, (len(jfk) + len(gap)) / SAMPLE_RATE, 2 * (len(jfk) + len(gap)) / SAMPLE_RATE]
    path = tmp_path / "three.flac"
    _write_flac(path, np.concatenate([jfk, gap, jfk, gap, jfk]))

    windowed = Service(settings.model_copy(update={"window_seconds": 15.0}))
    try:
        progress: list[tuple[float, float]] = []
        options = TranscriptionOptions(language="en")
        t = windowed.transcribe_sync(path, options, "whisper/tiny.en", progress=lambda *p: progress.append(p))
    finally:
        windowed.close()
    assert len(progress) >= 3  # one report per window
    assert progress[-1][0] == pytest.approx(t.duration, abs=0.01)
    assert progress[-1][1] == pytest.approx(t.duration, abs=0.1)
    assert t.duration == pytest.approx(3 * 11.0 + 2 * 4.0, abs=0.05)
    americans = [w.start for w in t.words if w.word.lower().startswith("americans")]
    assert len(americans) == 3
    for start, copy_start in zip(americans, copy_starts, strict=True):
        assert copy_start + 1.0 < start < copy_start + 2.6
    starts = [w.start for w in t.words]
    assert starts == sorted(starts)
    assert t.text.lower().count("ask not what your country") == 3


def test_sync_path_is_the_served_path(service: Service, data: Path) -> None:
    """The CLI's synchronous call runs the server's pipeline, fallback included (the old sync path had none)."""
    path = data / "en" / "spk1_snt1.wav"
    options = TranscriptionOptions(language="en")
    result = service.transcribe_file_sync(path, options, ["deepgram/nova-3", "whisper/tiny.en"])  # no key set here
    assert "dog" in result.transcript.text.lower()
    assert result.transcript.model_id == "whisper/tiny.en"
    assert result.transcript.warnings[0].startswith("deepgram/nova-3: model_unavailable: ")
    assert result.transcript.warnings[0].endswith("fell back to whisper/tiny.en")


async def test_async_path_matches_sync_path(service: Service, data: Path) -> None:
    path = data / "en" / "spk1_snt1.wav"
    options = TranscriptionOptions(language="en")
    a = await service.transcribe(path, options, "whisper/tiny.en")
    b = await anyio.to_thread.run_sync(service.transcribe_sync, path, options, "whisper/tiny.en")
    assert a.text == b.text
    assert "dog" in a.text.lower()


def test_models_listing(service: Service) -> None:
    service.engine("whisper/tiny.en")
    models = {m.id: m for m in service.list_models()}
    assert set(models) >= {"whisper/tiny.en", "whisper/base"}
    assert models["whisper/tiny.en"].loaded
    assert models["whisper/tiny.en"].languages == ("en",)
    assert len(models["whisper/base"].languages) == 99
    assert models["whisper/base"].default
    assert "inworld/inworld-stt-1" in models["whisper/base"].aliases


def test_engines_are_loaded_once(service: Service) -> None:
    assert service.engine("whisper/tiny.en") is service.engine("whisper/tiny.en")
    assert service.engine("inworld/inworld-stt-1") is service.engine(None) is service.engine("whisper/base")


def test_unknown_model(service: Service) -> None:
    with pytest.raises(ModelNotFound):
        service.engine("whisper/nope")


def test_language_is_identified_per_segment(service: Service, data: Path) -> None:
    """The MIT licence read in English, then in German: each segment carries its own language."""
    t = service.transcribe_sync(data / "multilingual" / "en-de-license.mp3", TranscriptionOptions(), "whisper/base")
    assert t.language == "en"
    english = [s for s in t.segments if s.end < 30.0]
    german = [s for s in t.segments if s.start > 30.0]
    assert english
    assert german
    assert all(s.language == "en" for s in english)
    assert all(s.language == "de" for s in german)
    assert "permission is hereby granted" in " ".join(s.text.lower() for s in english)
    assert "software" in " ".join(s.text.lower() for s in german)


async def test_a_profiled_file_identifies_each_segment_language_once(
    service: Service, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The profile reuses the scores the transcription computed for each segment instead of running LID again."""
    engine = service.engine("whisper/base")
    calls: list[float] = []
    detect = engine.detect_language  # type: ignore[attr-defined]

    def counted(audio: np.ndarray, top: int = 5) -> object:
        calls.append(len(audio) / SAMPLE_RATE)
        return detect(audio, top)

    monkeypatch.setattr(engine, "detect_language", counted)
    result = await service.transcribe_file(
        data / "multilingual" / "en-de-license.mp3", TranscriptionOptions(), "whisper/base", profile=True
    )
    segments = result.transcript.segments
    assert len(calls) == len(segments)  # one identification per segment, none again for its profile
    for segment, profile in zip(segments, result.segment_profiles, strict=True):
        assert profile is not None
        assert segment.language_scores[0].code == segment.language
        assert profile.language[0].label == segment.language
    assert {s.language for s in segments} == {"en", "de"}


# -- diarization --------------------------------------------------------------------------------------------------

_TALK = ["en/spk1_snt1.wav", "en/spk2_snt1.wav", "en/spk1_snt2.wav", "en/spk2_snt2.wav", "en/spk1_snt3.wav"]


async def test_diarization_tells_two_real_voices_apart(service: Service, data: Path) -> None:
    """Five Harvard sentences, two speakers taking turns (real recordings, 0.8 s apart)."""
    audio, turns = conversation(data, _TALK)
    source = RawAudio(encode_linear16(audio), PcmEncoding.LINEAR16, SAMPLE_RATE)
    result = await service.transcribe_file(
        source, TranscriptionOptions(language="en"), "whisper/tiny.en", diarize=DiarizationOptions()
    )
    who = result.speakers
    assert who is not None
    words = result.transcript.words
    assert len(who.words) == len(words) > 30
    assert who.count == 2
    assert who.words[0] == 1  # numbered by first appearance
    accuracy = speaker_accuracy(turns, [(w.start, w.end, k) for w, k in zip(words, who.words, strict=True)])
    assert accuracy >= 0.95, accuracy
    # A segment (up to 30 s of speech for faster-whisper) may hold both voices: it takes the one heard longest.
    assert len(who.segments) == len(result.transcript.segments)
    assert set(who.segments) <= {1, 2}


async def test_diarization_can_be_told_how_many_speakers(service: Service, data: Path) -> None:
    audio, _ = conversation(data, _TALK[:4])
    source = RawAudio(encode_linear16(audio), PcmEncoding.LINEAR16, SAMPLE_RATE)
    options = TranscriptionOptions(language="en")
    one = await service.transcribe_file(source, options, "whisper/tiny.en", diarize=DiarizationOptions(max_speakers=1))
    assert one.speakers is not None
    assert set(one.speakers.words) == {1}
    three = DiarizationOptions(min_speakers=3, max_speakers=3)
    forced = await service.transcribe_file(source, options, "whisper/tiny.en", diarize=three)
    assert forced.speakers is not None
    assert forced.speakers.count == 3


async def test_diarization_is_off_unless_asked(service: Service, data: Path) -> None:
    result = await service.transcribe_file(data / "en" / "spk1_snt1.wav", TranscriptionOptions(), "whisper/tiny.en")
    assert result.speakers is None


async def test_channels_transcribed_separately_keep_their_profiles_in_order(service: Service, data: Path) -> None:
    stereo = data / "two-speakers" / "stereo-two-speakers.wav"
    options = TranscriptionOptions(language="en")
    result = await service.transcribe_file(stereo, options, "whisper/tiny.en", profile=True, separate_channels=True)
    segments = result.transcript.segments
    assert {s.channel for s in segments} == {1, 2}
    assert [s.start for s in segments] == sorted(s.start for s in segments)
    assert len(result.segment_profiles) == len(segments)  # reordered with their segments
    assert all(p is not None for p in result.segment_profiles)
    assert result.profile is not None
    # Each segment's profile measured its own channel: the right channel's speech is ~2.4 s of the 5 s.
    right = next(p for s, p in zip(segments, result.segment_profiles, strict=True) if s.channel == 2)
    assert right is not None
    assert right.speech_seconds < 3.0


def test_numpy_blas_runs_on_one_thread_beside_ctranslate2(service: Service) -> None:
    """Settings.blas_threads (default 1) is applied when the service starts: every BLAS pool numpy/scipy loaded."""
    blas = [pool for pool in threadpool_info() if pool["user_api"] == "blas"]
    assert blas
    assert {pool["num_threads"] for pool in blas} == {service.settings.blas_threads} == {1}


async def test_diarized_profiles_reuse_the_chunk_embeddings_and_tell_each_voice(
    service: Service, data: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The profile heads read the speaker embedding diarization already made for each chunk (none again per chunk
    profile), and each speaker's own profile gets the voice's gender: spk1 is a woman,
    spk2 a man."""
    encoder = service.voice.speaker_encoder()
    calls: list[int] = []
    embed = encoder.embed

    def counted(clips: list[np.ndarray]) -> np.ndarray:
        calls.append(len(clips))
        return embed(clips)

    monkeypatch.setattr(encoder, "embed", counted)
    audio, _ = conversation(data, _TALK)
    source = RawAudio(encode_linear16(audio), PcmEncoding.LINEAR16, SAMPLE_RATE)
    result = await service.transcribe_file(
        source, TranscriptionOptions(language="en"), "whisper/tiny.en", diarize=DiarizationOptions(), profile=True
    )
    assert result.speakers is not None
    # Each segment's own profile embeds its segment; the window's chunks are embedded together once, for the
    # clustering and the chunks' profiles alike.
    segments = len(result.transcript.segments)
    assert len(calls) == segments + 1
    assert calls.count(1) == segments
    assert max(calls) >= 2
    genders = {k: p.gender[0].label for k, p in result.speaker_profiles.items()}
    assert genders == {1: "female", 2: "male"}
