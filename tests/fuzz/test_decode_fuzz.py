"""Fuzzing the decoder as the server calls it (isolated, default limits): garbled containers and headers, damaged
real clips, playlists and other texts. Every input must answer with audio or a :class:`VoxgateError`, quickly, and
never crash a decoder process. Deterministic (derandomized) and quick."""

from __future__ import annotations

import struct
import time
from collections.abc import Callable
from functools import cache

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.speech import DATA
from voxgate.audio.decode import iter_decode, probe
from voxgate.errors import VoxgateError

TIME_LIMIT = 10.0
"""Seconds any one input may take (the slowest real answer here is well under one)."""

FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=400,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

CLIPS = {
    "flac": DATA / "en" / "jfk.flac",
    "mp3": DATA / "vocabulary" / "comfyui.mp3",
    "wav": DATA / "en" / "spk1_snt1.wav",
    "stereo-wav": DATA / "two-speakers" / "stereo-two-speakers.wav",
}


@cache
def clip(name: str) -> bytes:
    return CLIPS[name].read_bytes()[:200_000]


@cache
def ogg_clip() -> bytes:
    """A short Opus-in-Ogg clip encoded here (tests/data has none)."""
    import io

    import av
    from av.audio.stream import AudioStream

    buf = io.BytesIO()
    with av.open(buf, "w", format="ogg") as out:
        stream = out.add_stream("libopus", rate=48_000, layout="mono")
        assert isinstance(stream, AudioStream)
        t = np.arange(48_000) / 48_000
        frame = av.AudioFrame.from_ndarray(
            (0.3 * np.sin(2 * np.pi * 440 * t))[None, :].astype(np.float32), format="fltp", layout="mono"
        )
        frame.sample_rate = 48_000
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def answer(data: bytes, call: Callable[[bytes], object]) -> None:
    """``call(data)`` gives audio or a VoxgateError, in time, and no decoder process crashed or hung."""
    start = time.monotonic()
    failure = ""
    try:
        call(data)
    except VoxgateError as exc:
        failure = exc.message
    assert "the decoder crashed" not in failure
    assert "the decoder timed out" not in failure
    assert time.monotonic() - start < TIME_LIMIT


def decode_all(data: bytes) -> object:
    total = 0
    for chunk in iter_decode(data):
        assert chunk.dtype == np.float32
        assert chunk.ndim == 1
        assert np.isfinite(chunk).all()
        total += chunk.size
    return total


def decode_last_channel(data: bytes) -> object:
    return sum(chunk.size for chunk in iter_decode(data, channel=3, chunk_seconds=5.0))


CALLS = [probe, decode_all, decode_last_channel]


# --- WAV headers with any field --------------------------------------------------------------------------------------


@st.composite
def wav_files(draw: st.DrawFn) -> bytes:
    tag = draw(st.sampled_from([1, 3, 6, 7, 0x11, 0x55, 0xFFFE, 0x1234]) | st.integers(0, 0xFFFF))
    channels = draw(st.sampled_from([0, 1, 2, 8, 9, 16, 32, 33, 64, 255, 65535]) | st.integers(0, 0xFFFF))
    rate = draw(st.sampled_from([0, 1, 100, 3999, 8000, 16000, 44100, 192000, 192001, 2**31, 2**32 - 1]))
    bits = draw(st.sampled_from([0, 1, 4, 8, 12, 16, 20, 24, 32, 64, 0xFFFF]))
    align = draw(st.integers(0, 0xFFFF) | st.just(max(1, channels * bits // 8) & 0xFFFF))
    payload = draw(st.binary(max_size=4096) | st.integers(0, 20_000).map(lambda n: bytes(n)))
    data_size = draw(st.sampled_from([len(payload), 0, 0xFFFFFFFF]) | st.integers(0, 0xFFFFFFFF))
    fmt = struct.pack("<HHIIHH", tag, channels, rate, (rate * align) & 0xFFFFFFFF, align, bits)
    if tag == 0xFFFE:
        mask = draw(st.integers(0, 0xFFFFFFFF))
        fmt += struct.pack("<HHI", 22, bits, mask) + draw(st.binary(min_size=16, max_size=16))
    body = b"WAVEfmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", data_size) + payload
    return b"RIFF" + struct.pack("<I", draw(st.sampled_from([len(body), 0, 0xFFFFFFFF]))) + body


@FUZZ
@given(wav_files(), st.sampled_from(CALLS))
def test_wav_headers(data: bytes, call: Callable[[bytes], object]) -> None:
    answer(data, call)


# --- real clips, truncated and damaged --------------------------------------------------------------------------------


@FUZZ
@given(
    st.sampled_from([*CLIPS, "ogg"]),
    st.floats(0.0, 1.0),
    st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(0, 255)), max_size=40),
    st.sampled_from(CALLS),
)
def test_damaged_clips(name: str, cut: float, flips: list[tuple[float, int]], call: Callable[[bytes], object]) -> None:
    raw = bytearray(ogg_clip() if name == "ogg" else clip(name))
    raw = raw[: max(1, int(len(raw) * cut))]
    for where, value in flips:
        # Headers are where parsers go wrong: half the flips land in the first 256 bytes.
        position = int(where * min(len(raw), 256 if value % 2 else len(raw)))
        raw[min(position, len(raw) - 1)] = value
    answer(bytes(raw), call)


# --- magic numbers with garbage behind them, and texts ----------------------------------------------------------------

MAGICS = [
    b"RIFF\xff\xff\xff\xffWAVE",
    b"RIFF\x00\x00\x00\x00RF64",
    b"fLaC",
    b"OggS\x00\x02",
    b"ID3\x04\x00\x00\x00\x00\x00\x00",
    b"\xff\xfb\x90\x64",
    b"\xff\xf1\x50\x80",
    b"FORM\x00\x00\x00\x00AIFF",
    b"caff\x00\x01\x00\x00",
    b".snd\x00\x00\x00\x18",
    b"#!AMR\n",
    b"\x00\x00\x00\x20ftypM4A ",
    b"\x1a\x45\xdf\xa3",
    b"riff\x2e\x91\xcf\x11",
    b"\x00\x00\x01\xba",
    b"\x89PNG\r\n\x1a\n",
    b"",
]

TEXTS = [
    "ffconcat version 1.0\nfile '{}'\n",
    "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n{}\n#EXT-X-ENDLIST\n",
    "#EXTM3U\n{}\n",
    "[playlist]\nFile1={}\nNumberOfEntries=1\n",
    "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 5004 RTP/AVP 0\r\n{}",
    "<ASX version='3.0'><entry><ref href='{}'/></entry></ASX>",
    "<?xml version='1.0'?><smil><body><audio src='{}'/></body></smil>",
    "WEBVTT\n\n00:00.000 --> 00:01.000\n{}\n",
    "{}",
]

TARGETS = [
    str(DATA / "en" / "jfk.flac"),
    "jfk.flac",
    "file:/etc/passwd",
    "concat:a.wav|b.wav",
    "udp://0.0.0.0:5004",
    "http://127.0.0.1:1/x.mp3",
    "subfile,,start,0,end,0,,:x.wav",
]


@FUZZ
@given(st.sampled_from(MAGICS), st.binary(max_size=2048), st.sampled_from(CALLS))
def test_magic_numbers_with_garbage(magic: bytes, tail: bytes, call: Callable[[bytes], object]) -> None:
    answer(magic + tail, call)


@FUZZ
@given(st.sampled_from(TEXTS), st.sampled_from(TARGETS), st.text(max_size=200), st.sampled_from(CALLS))
def test_playlists_and_texts(template: str, target: str, noise: str, call: Callable[[bytes], object]) -> None:
    data = (template.format(target) + noise).encode()
    try:
        call(data)
    except VoxgateError:
        return
    raise AssertionError(f"a text was decoded as audio: {data[:80]!r}")
