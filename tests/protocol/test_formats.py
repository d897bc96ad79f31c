"""Rendering a Transcript as text, SRT, WebVTT and OpenAI's json / verbose_json, on hand-built transcripts."""

from __future__ import annotations

import json

import pytest

from voxgate.protocol.formats import (
    LANGUAGE_NAMES,
    ResponseFormat,
    render,
    speaker_letter,
    to_openai_diarized_json,
    to_openai_json,
    to_srt,
    to_text,
    to_vtt,
)
from voxgate.types import LanguageScore, Segment, Speakers, Transcript, Word

HELLO = Segment(
    text=" Hello there.",
    start=0.0,
    end=1.5,
    words=(Word("Hello", 0.0, 0.6, 0.9), Word("there.", 0.7, 1.5, 0.8)),
    language="en",
    avg_logprob=-0.25,
    no_speech_prob=0.01,
)
LATE = Segment(
    text="A very late line. ",
    start=3725.5,
    end=3727.042,
    words=(Word("A", 3725.5, 3725.6, 0.99), Word("very", 3725.6, 3726.0, 0.9), Word("late", 3726.0, 3726.4, 0.7)),
    language="en",
)
TRANSCRIPT = Transcript(
    segments=(HELLO, LATE),
    duration=3728.0004,
    language="en",
    language_probability=0.98,
    language_candidates=(LanguageScore("en", 0.98), LanguageScore("de", 0.01)),
    model_id="whisper/tiny.en",
)


def one(start: float, end: float, text: str = "x") -> Transcript:
    return Transcript(segments=(Segment(text=text, start=start, end=end),), duration=max(end, 1.0))


def test_text() -> None:
    assert to_text(TRANSCRIPT) == "Hello there. A very late line.\n"
    assert render(TRANSCRIPT, ResponseFormat.TEXT) == to_text(TRANSCRIPT)


def test_srt() -> None:
    assert to_srt(TRANSCRIPT) == (
        "1\n00:00:00,000 --> 00:00:01,500\nHello there.\n\n2\n01:02:05,500 --> 01:02:07,042\nA very late line.\n"
    )
    assert render(TRANSCRIPT, ResponseFormat.SRT) == to_srt(TRANSCRIPT)


def test_vtt() -> None:
    assert to_vtt(TRANSCRIPT) == (
        "WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHello there.\n\n01:02:05.500 --> 01:02:07.042\nA very late line.\n"
    )
    assert render(TRANSCRIPT, ResponseFormat.VTT) == to_vtt(TRANSCRIPT)


# Two speakers: "Hello" by 1, "there." by 2, the late line by 1 again.
SPEAKERS = Speakers(words=(1, 2, 1, 1, 1), segments=(1, 1), count=2)


def test_diarized_json_letters_the_speakers() -> None:
    body = to_openai_diarized_json(TRANSCRIPT, SPEAKERS)
    spoken = [(s["speaker"], s["text"]) for s in body["segments"]]
    assert spoken == [("A", "Hello"), ("B", "there."), ("A", "A very late")]
    assert body["segments"][1] == {
        "type": "transcript.text.segment", "id": "seg_1", "start": 0.7, "end": 1.5, "text": "there.", "speaker": "B"
    }  # fmt: skip
    assert body["usage"] == {"type": "duration", "seconds": 3728.0}
    assert [speaker_letter(k) for k in (1, 2, 26, 27, 52, 53)] == ["A", "B", "Z", "AA", "AZ", "BA"]


def test_speakers_in_text_srt_and_vtt() -> None:
    assert to_text(TRANSCRIPT, SPEAKERS) == "Speaker 1: Hello\nSpeaker 2: there.\nSpeaker 1: A very late\n"
    srt = to_srt(TRANSCRIPT, SPEAKERS)
    assert srt.startswith("1\n00:00:00,000 --> 00:00:00,600\nSpeaker 1: Hello\n\n2\n00:00:00,700 --> 00:00:01,500\n")
    assert srt.endswith("3\n01:02:05,500 --> 01:02:06,400\nSpeaker 1: A very late\n")
    vtt = to_vtt(TRANSCRIPT, SPEAKERS)
    assert "00:00:00.700 --> 00:00:01.500\n<v Speaker 2>there.\n" in vtt


@pytest.mark.parametrize(
    ("seconds", "srt", "vtt"),
    [
        (0.0, "00:00:00,000", "00:00:00.000"),
        (1.5, "00:00:01,500", "00:00:01.500"),
        (59.999, "00:00:59,999", "00:00:59.999"),
        (59.9996, "00:01:00,000", "00:01:00.000"),  # rounding carries into the minutes
        (61.25, "00:01:01,250", "00:01:01.250"),
        (3599.9999, "01:00:00,000", "01:00:00.000"),  # ... and into the hours
        (3600.0, "01:00:00,000", "01:00:00.000"),
        (3725.5, "01:02:05,500", "01:02:05.500"),
        (36000.001, "10:00:00,001", "10:00:00.001"),
        (360000.0, "100:00:00,000", "100:00:00.000"),  # past 99 h the hours just grow
        (-0.2, "00:00:00,000", "00:00:00.000"),  # never negative
    ],
)
def test_timestamps(seconds: float, srt: str, vtt: str) -> None:
    end = max(seconds, 0.0) + 1.0
    assert to_srt(one(seconds, end)).split("\n")[1].split(" --> ")[0] == srt
    assert to_vtt(one(seconds, end)).split("\n")[2].split(" --> ")[0] == vtt


def test_empty_transcript() -> None:
    empty = Transcript(segments=(), duration=0.0)
    assert to_text(empty) == "\n"
    assert to_srt(empty) == ""
    assert to_vtt(empty) == "WEBVTT\n\n"
    assert render(empty, ResponseFormat.JSON) == {"text": ""}


def test_cue_text_is_stripped_and_numbered_from_one() -> None:
    t = Transcript(
        segments=tuple(Segment(text=f"  line {i}  ", start=i, end=i + 0.5) for i in range(12)),
        duration=12.0,
    )
    blocks = to_srt(t).rstrip("\n").split("\n\n")
    assert len(blocks) == 12
    for i, block in enumerate(blocks):
        number, times, text = block.split("\n")
        assert number == str(i + 1)
        assert text == f"line {i}"
        assert times == f"00:00:{i:02d},000 --> 00:00:{i:02d},500"


def test_json() -> None:
    assert render(TRANSCRIPT, ResponseFormat.JSON) == {"text": "Hello there. A very late line."}
    assert to_openai_json(TRANSCRIPT, verbose=False) == {"text": "Hello there. A very late line."}


def test_verbose_json() -> None:
    body = render(TRANSCRIPT, ResponseFormat.VERBOSE_JSON)
    assert isinstance(body, dict)
    json.dumps(body)  # JSON-ready
    assert body["task"] == "transcribe"
    assert body["language"] == "english"
    assert body["duration"] == 3728.0
    assert body["text"] == "Hello there. A very late line."
    assert [s["id"] for s in body["segments"]] == [0, 1]
    first, second = body["segments"]
    assert (first["start"], first["end"], first["text"]) == (0.0, 1.5, " Hello there.")
    assert (second["start"], second["end"], second["text"]) == (3725.5, 3727.042, " A very late line.")
    assert first["avg_logprob"] == -0.25
    assert first["no_speech_prob"] == 0.01
    assert second["avg_logprob"] == 0.0  # unknown → 0
    assert second["no_speech_prob"] == 0.0
    assert body["words"] == [
        {"word": "Hello", "start": 0.0, "end": 0.6},
        {"word": "there.", "start": 0.7, "end": 1.5},
        {"word": "A", "start": 3725.5, "end": 3725.6},
        {"word": "very", "start": 3725.6, "end": 3726.0},
        {"word": "late", "start": 3726.0, "end": 3726.4},
    ]


def test_verbose_json_options() -> None:
    body = to_openai_json(TRANSCRIPT, verbose=True, task="translate", words=False, segments=False)
    assert body == {"task": "translate", "language": "english", "duration": 3728.0, "text": TRANSCRIPT.text}
    assert "words" in to_openai_json(TRANSCRIPT, verbose=True, segments=False)
    assert "segments" in to_openai_json(TRANSCRIPT, verbose=True, words=False)


@pytest.mark.parametrize(
    ("code", "name"),
    [("de", "german"), ("zh", "chinese"), ("haw", "hawaiian"), ("ht", "haitian creole"), ("xx", "xx"), (None, "")],
)
def test_verbose_json_language_names(code: str | None, name: str) -> None:
    t = Transcript(segments=(HELLO,), duration=1.5, language=code)
    assert to_openai_json(t, verbose=True)["language"] == name


def test_language_names_are_lowercase_english_words() -> None:
    assert LANGUAGE_NAMES["en"] == "english"
    assert all(name.replace(" ", "").isalpha() and name == name.lower() for name in LANGUAGE_NAMES.values())
    assert len(set(LANGUAGE_NAMES.values())) == len(LANGUAGE_NAMES) == 100  # every language Whisper knows


def test_response_format_values() -> None:
    assert {f.value for f in ResponseFormat} == {"json", "text", "srt", "vtt", "verbose_json", "diarized_json"}
    with pytest.raises(ValueError, match="docx"):
        ResponseFormat("docx")
