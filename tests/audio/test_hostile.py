"""Hostile input: containers that open other inputs, too many channels, absurd rates, decompression bombs."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import time
import wave
from pathlib import Path

import av
import numpy as np
import pytest
from av.audio.stream import AudioStream

from tests.speech import DATA
from voxgate.audio.decode import DecodeLimits, decode, iter_decode, probe
from voxgate.errors import AudioDecodeError, AudioTooLong, TooManyChannels, UnsupportedSampleRate
from voxgate.types import SAMPLE_RATE

JFK = DATA / "en" / "jfk.flac"


def pcm_wav(channels: int, rate: int, frames: int, *, width: int = 2) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(width)
        out.setframerate(rate)
        out.writeframes(b"\x01" * width * channels * frames)
    return buf.getvalue()


# --- containers that read other inputs ----------------------------------------------------------------------------


def nested_inputs(secret: Path) -> dict[str, bytes]:
    return {
        "ffconcat-absolute": f"ffconcat version 1.0\nfile '{secret}'\n".encode(),
        "ffconcat-relative": f"ffconcat version 1.0\nfile '{secret.name}'\n".encode(),
        "ffconcat-protocol": f"ffconcat version 1.0\nfile 'file:{secret}'\n".encode(),
        "hls": f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\nfile://{secret}\n#EXT-X-ENDLIST\n".encode(),
        "m3u-plain": f"#EXTM3U\n#EXTINF:11,jfk\n{secret}\n".encode(),
        "sdp": b"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\nm=audio 45678 RTP/AVP 0\r\n",
        "image2-pattern": b"\x89PNG\r\n\x1a\n" + bytes(64),
    }


@pytest.mark.parametrize("name", list(nested_inputs(Path("/x"))))
def test_containers_that_open_other_inputs_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    secret = tmp_path / "secret.flac"
    secret.write_bytes(JFK.read_bytes())
    monkeypatch.chdir(tmp_path)  # a relative entry would name the secret
    data = nested_inputs(secret)[name]
    upload = tmp_path / f"upload.{name}"
    upload.write_bytes(data)
    before = secret.stat().st_atime_ns
    for source in (data, upload):
        for call in (probe, decode):
            start = time.monotonic()
            with pytest.raises(AudioDecodeError):
                call(source)
            assert time.monotonic() - start < 2  # no socket is listened on, no timeout waited for
    assert secret.stat().st_atime_ns == before


def test_a_playlist_that_names_an_audio_file_never_returns_its_audio(tmp_path: Path) -> None:
    """The class, not one spelling: whatever FFmpeg probes a text as, no audio of another file comes back."""
    secret = tmp_path / "secret.flac"
    secret.write_bytes(JFK.read_bytes())
    for header in (
        "ffconcat version 1.0\nfile ",
        "#EXTM3U\n",
        "[playlist]\nFile1=",
        "<ASX version='3.0'><entry><ref href=",
    ):
        data = f"{header}'{secret}'\n".encode()
        with pytest.raises(AudioDecodeError):
            decode(data)


def test_only_allowed_formats_open() -> None:
    raw = io.BytesIO()
    with av.open(raw, "w", format="nut") as out:  # a fine audio container, but not one people send: refused
        stream = out.add_stream("pcm_s16le", rate=SAMPLE_RATE)
        assert isinstance(stream, AudioStream)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1600), np.int16), format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    with pytest.raises(AudioDecodeError, match="format"):
        probe(raw.getvalue())


# --- many channels --------------------------------------------------------------------------------------------------


def test_nine_channels_without_mask_decode_in_a_subprocess(tmp_path: Path) -> None:
    """PyAV's to_ndarray crashed (SIGSEGV) on planar frames of more than 8 planes: run it where a crash shows."""
    path = tmp_path / "9ch.wav"
    path.write_bytes(pcm_wav(9, SAMPLE_RATE, 16))
    code = (
        "import sys; from pathlib import Path; from voxgate.audio.decode import decode, iter_decode;"
        "p = Path(sys.argv[1]); a = decode(p); b = decode(p.read_bytes()); c = list(iter_decode(p, channel=8));"
        "print(len(a), len(b), sum(map(len, c)))"
    )
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["16", "16", "16"]


@pytest.mark.parametrize("channels", [9, 16, 32])
def test_many_channels_are_averaged(channels: int) -> None:
    audio = decode(pcm_wav(channels, SAMPLE_RATE, 1600))
    np.testing.assert_allclose(audio, 257 / 32768, rtol=1e-4)
    assert len(next(iter_decode(pcm_wav(channels, SAMPLE_RATE, 1600), channel=channels - 1))) == 1600


def test_too_many_channels_are_refused_from_the_header() -> None:
    data = pcm_wav(33, SAMPLE_RATE, 16)
    for call in (probe, decode):
        with pytest.raises(TooManyChannels, match="33 channels"):
            call(data)
    assert probe(data, limits=DecodeLimits(max_channels=64)).channels == 33


# --- rates and bombs ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [1, 100, 3999, 192_001, 1_000_000])
def test_sample_rates_out_of_range_are_refused_at_once(rate: int) -> None:
    data = pcm_wav(1, rate, 8000)  # 16 KB: at 1 Hz, 8,000 s of audio
    start = time.monotonic()
    for call in (probe, decode):
        with pytest.raises(UnsupportedSampleRate):
            call(data)
    assert time.monotonic() - start < 0.5


def test_header_longer_than_the_cap_is_refused_before_decoding() -> None:
    data = pcm_wav(1, 8000, 8000 * 20)
    with pytest.raises(AudioTooLong):
        probe(data, limits=DecodeLimits(max_seconds=10))
    chunks = iter_decode(data, limits=DecodeLimits(max_seconds=10))
    with pytest.raises(AudioTooLong):
        next(chunks)


def test_a_lying_header_is_stopped_mid_decode() -> None:
    # The data chunk says 1 s; 20 s follow. (FFmpeg reads a WAV to the end of the data it finds.)
    data = bytearray(pcm_wav(1, 8000, 8000 * 20))
    data[40:44] = struct.pack("<I", 0xFFFFFFFF)
    with pytest.raises(AudioTooLong):
        decode(bytes(data), limits=DecodeLimits(max_seconds=10))


def silent_flac(seconds: float) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format="flac") as out:
        stream = out.add_stream("flac", rate=SAMPLE_RATE, layout="mono")
        assert isinstance(stream, AudioStream)
        block = np.zeros((1, SAMPLE_RATE * 10), np.int16)
        for _ in range(round(seconds / 10)):
            frame = av.AudioFrame.from_ndarray(block, format="s16", layout="mono")
            frame.sample_rate = SAMPLE_RATE
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def test_a_silent_flac_bomb_is_refused_fast() -> None:
    data = silent_flac(1200)
    assert len(data) < 250_000  # 20 minutes in well under a second of bytes at 2 kbit/s
    start = time.monotonic()
    with pytest.raises(AudioTooLong, match="bytes decode to over"):
        decode(data)
    assert time.monotonic() - start < 2
    # Not a bomb when the bound is off (and short silence is fine whatever its size).
    assert len(decode(silent_flac(20))) == 20 * SAMPLE_RATE


def test_real_low_bitrate_speech_passes(tmp_path: Path) -> None:
    """6 kbit/s Opus voice (the lowest real speech codec rate in common use) is well inside the bound."""
    source = decode(DATA / "multilingual" / "en-de-license.mp3")
    path = tmp_path / "low.ogg"
    with av.open(str(path), "w", format="ogg") as out:
        stream = out.add_stream("libopus", rate=48_000, layout="mono")
        assert isinstance(stream, AudioStream)
        stream.bit_rate = 6000
        from voxgate.audio.pcm import resample

        frame = av.AudioFrame.from_ndarray(resample(source, SAMPLE_RATE, 48_000)[None, :], format="fltp", layout="mono")
        frame.sample_rate = 48_000
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    size = path.stat().st_size
    seconds = len(decode(path)) / SAMPLE_RATE
    assert seconds == pytest.approx(60, abs=0.5)
    assert size * 8 / seconds < 8000  # it really is low-bitrate
    assert size * 8 / seconds > 2 * DecodeLimits().min_bitrate  # and still twice the bound
