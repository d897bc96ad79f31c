"""Joining per-window and per-channel results into one file result."""

from __future__ import annotations

import pytest

from voxgate.errors import EmptyAudio
from voxgate.files import FileResult, WindowResult, merge_channels, merge_windows
from voxgate.types import SAMPLE_RATE, Segment, Transcript, Word


def _window(text: str, start: float, end: float, language: str = "en", warnings: tuple[str, ...] = ()) -> Transcript:
    words = tuple(Word(w, start + i * 0.3, start + i * 0.3 + 0.25, 0.9) for i, w in enumerate(text.split()))
    return Transcript(
        segments=(Segment(text=text, start=start, end=end, words=words, language=language),),
        duration=end + 0.5,
        language=language,
        warnings=warnings,
        model_id="whisper/tiny.en",
    )


def test_merge_of_nothing_is_empty_audio() -> None:
    with pytest.raises(EmptyAudio):
        merge_windows([], "whisper/tiny.en")


def test_windows_move_by_their_offsets() -> None:
    first = _window("ask not", 1.0, 2.0, warnings=("a",))
    second = _window("what your country", 0.5, 1.5, language="de", warnings=("a", "b"))
    merged = merge_windows([WindowResult(0, first), WindowResult(300 * SAMPLE_RATE, second)], "whisper/base")
    t = merged.transcript
    assert [s.start for s in t.segments] == [1.0, 300.5]
    assert [w.start for w in t.words][-3:] == pytest.approx([300.5, 300.8, 301.1])
    assert t.duration == pytest.approx(300 + 2.0)
    assert t.language == "en"  # the first window's
    assert t.warnings == ("a", "b")  # each once, in order
    assert t.model_id == "whisper/base"
    assert merged.profile is None
    assert merged.segment_profiles == ()


def test_channels_interleave_in_time_and_keep_the_main_language() -> None:
    left = FileResult(_window("hello there", 0.0, 3.0))
    right = FileResult(_window("ja", 1.0, 1.4, language="de"))
    merged = merge_channels([left, right])
    assert [s.text for s in merged.transcript.segments] == ["hello there", "ja"]
    assert merged.transcript.language == "en"  # the channel that spoke longest
    assert merged.profile is None
