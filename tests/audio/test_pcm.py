"""Raw PCM: G.711 tables, LINEAR16, channel downmix, sample-rate checks and resampling, whole and streamed."""

from __future__ import annotations

import io

import av
import numpy as np
import numpy.typing as npt
import pytest

from tests.speech import DATA
from voxgate.audio.decode import decode
from voxgate.audio.pcm import (
    ALAW_TABLE,
    MAX_SAMPLE_RATE,
    MIN_SAMPLE_RATE,
    MULAW_TABLE,
    PcmEncoding,
    StreamResampler,
    check_sample_rate,
    decode_pcm,
    encode_linear16,
    pcm_to_float,
    resample,
)
from voxgate.errors import EmptyAudio, InvalidAudioEncoding, InvalidPcm, InvalidRequest, InvalidSampleRate
from voxgate.types import SAMPLE_RATE, Audio

JFK = DATA / "en" / "jfk.flac"


@pytest.fixture(scope="module")
def jfk() -> Audio:
    return decode(JFK)


def tone(freq: float, rate: int, seconds: float = 1.0, amplitude: float = 0.5) -> npt.NDArray[np.float32]:
    t = np.arange(round(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def peak_hz(audio: Audio, rate: int = SAMPLE_RATE) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return float(np.fft.rfftfreq(len(audio), 1 / rate)[np.argmax(spectrum)])


def rms(audio: npt.NDArray[np.float32]) -> float:
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))


def ffmpeg_g711(fmt: str) -> npt.NDArray[np.float32]:
    """FFmpeg's own decoding of the 256 G.711 codes, as float."""
    with av.open(io.BytesIO(bytes(range(256))), "r", format=fmt, options={"sample_rate": "8000"}) as container:
        pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
    assert pcm.dtype == np.int16
    return (pcm / 32768).astype(np.float32)


# --- G.711 --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "linear"), [(0xFF, 0), (0x7F, 0), (0x00, -32124), (0x80, 32124), (0xF0, 120), (0x70, -120)]
)
def test_mulaw_known_values(code: int, linear: int) -> None:
    assert MULAW_TABLE[code] == linear / 32768
    assert pcm_to_float(bytes([code]), PcmEncoding.MULAW)[0] == linear / 32768


@pytest.mark.parametrize(
    ("code", "linear"), [(0xD5, 8), (0x55, -8), (0xAA, 32256), (0x2A, -32256), (0xD4, 24), (0xC5, 264)]
)
def test_alaw_known_values(code: int, linear: int) -> None:
    assert ALAW_TABLE[code] == linear / 32768
    assert pcm_to_float(bytes([code]), PcmEncoding.ALAW)[0] == linear / 32768


@pytest.mark.parametrize(("table", "fmt"), [(MULAW_TABLE, "mulaw"), (ALAW_TABLE, "alaw")])
def test_g711_tables_match_ffmpeg(table: Audio, fmt: str) -> None:
    assert table.dtype == np.float32
    assert table.shape == (256,)
    np.testing.assert_array_equal(table, ffmpeg_g711(fmt))


@pytest.mark.parametrize("table", [MULAW_TABLE, ALAW_TABLE])
def test_g711_tables_are_symmetric(table: Audio) -> None:
    # Sign bit 0x80 mirrors every code.
    np.testing.assert_array_equal(table[:128], -table[128:])
    assert np.abs(table).max() < 1.0


# --- LINEAR16 -----------------------------------------------------------------------------------------------------


def test_linear16_is_little_endian_signed() -> None:
    audio = pcm_to_float(b"\x00\x40\x00\x80\xff\x7f\x00\x00", PcmEncoding.LINEAR16)
    assert audio.dtype == np.float32
    np.testing.assert_array_equal(audio, [0.5, -1.0, 32767 / 32768, 0.0])


def test_linear16_round_trip_is_exact() -> None:
    data = np.random.default_rng(1).integers(-32768, 32768, 10_000, dtype=np.int16).astype("<i2").tobytes()
    audio = pcm_to_float(data, PcmEncoding.LINEAR16)
    assert audio.min() >= -1.0
    assert audio.max() < 1.0
    assert encode_linear16(audio) == data


def test_encode_linear16_clips_and_silences_nan() -> None:
    out = np.frombuffer(encode_linear16(np.array([2.0, -2.0, np.nan, 0.5], np.float32)), "<i2")
    np.testing.assert_array_equal(out, [32767, -32768, 0, 16384])


def test_accepts_encoding_names_as_strings() -> None:
    np.testing.assert_array_equal(pcm_to_float(b"\xd5", "ALAW"), pcm_to_float(b"\xd5", PcmEncoding.ALAW))


def test_unknown_encoding() -> None:
    with pytest.raises(InvalidAudioEncoding, match="FLAC"):
        pcm_to_float(b"\x00\x00", "FLAC")


# --- channels -----------------------------------------------------------------------------------------------------


def test_interleaved_stereo_is_averaged() -> None:
    left, right = tone(300, 8000), tone(500, 8000, amplitude=0.25)
    interleaved = np.stack([left, right], axis=1).reshape(-1)
    audio = pcm_to_float(encode_linear16(interleaved), PcmEncoding.LINEAR16, channels=2)
    assert len(audio) == len(left)
    np.testing.assert_allclose(audio, (left + right) / 2, atol=1 / 32768)


def test_one_interleaved_channel_alone() -> None:
    left, right = tone(300, 8000), tone(500, 8000, amplitude=0.25)
    pcm = encode_linear16(np.stack([left, right], axis=1).reshape(-1))
    np.testing.assert_allclose(pcm_to_float(pcm, PcmEncoding.LINEAR16, 2, channel=1), right, atol=1 / 32768)
    with pytest.raises(InvalidRequest, match="no channel 3"):
        pcm_to_float(pcm, PcmEncoding.LINEAR16, 2, channel=2)


def test_g711_channels_are_averaged() -> None:
    # Two channels, two frames: (+8, -8) and (+32256, +24).
    audio = pcm_to_float(bytes([0xD5, 0x55, 0xAA, 0xD4]), PcmEncoding.ALAW, channels=2)
    np.testing.assert_array_equal(audio, [0.0, (32256 + 24) / 2 / 32768])


@pytest.mark.parametrize("channels", [0, -1, 9])
def test_channel_count_out_of_range(channels: int) -> None:
    with pytest.raises(InvalidRequest, match="channels") as caught:
        pcm_to_float(b"\x00" * 36, PcmEncoding.LINEAR16, channels=channels)
    assert type(caught.value) is InvalidRequest


@pytest.mark.parametrize(
    ("size", "encoding", "channels", "multiple"),
    [(3, PcmEncoding.LINEAR16, 1, 2), (6, PcmEncoding.LINEAR16, 2, 4), (3, PcmEncoding.MULAW, 2, 2), (7, "ALAW", 8, 8)],
)
def test_byte_count_must_fill_whole_frames(size: int, encoding: str, channels: int, multiple: int) -> None:
    with pytest.raises(InvalidPcm, match=rf"multiple of {multiple} bytes, got {size} bytes"):
        pcm_to_float(b"\x01" * size, encoding, channels)


def test_empty_pcm_chunk_is_empty_audio_array() -> None:
    audio = pcm_to_float(b"", PcmEncoding.LINEAR16)
    assert audio.shape == (0,)
    assert audio.dtype == np.float32


# --- sample rates -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [MIN_SAMPLE_RATE, 11_025, 16_000, 22_050, 44_100, MAX_SAMPLE_RATE])
def test_supported_sample_rates(rate: int) -> None:
    check_sample_rate(rate)


@pytest.mark.parametrize("rate", [4000, 7999, 48_001, 96_000, 0, -16_000])
def test_unsupported_sample_rates(rate: int) -> None:
    with pytest.raises(InvalidSampleRate, match="from 8000 to 48000 Hz"):
        check_sample_rate(rate)
    with pytest.raises(InvalidSampleRate):
        decode_pcm(b"\x00\x00" * 100, PcmEncoding.LINEAR16, rate, 1)


def test_decode_pcm_8k_mulaw_tone_to_16k() -> None:
    # Encode a 1 kHz tone to mu-law with FFmpeg's encoder, decode with ours.
    source = tone(1000, 8000)
    buf = io.BytesIO()
    with av.open(buf, "w", format="mulaw") as out:
        stream = out.add_stream("pcm_mulaw", rate=8000, layout="mono")
        frame = av.AudioFrame.from_ndarray(source[None, :], format="flt", layout="mono")
        frame.sample_rate = 8000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    audio = decode_pcm(buf.getvalue(), PcmEncoding.MULAW, 8000, 1)
    assert audio.dtype == np.float32
    assert len(audio) == 2 * len(source)
    assert peak_hz(audio) == pytest.approx(1000, abs=2)
    assert rms(audio[400:-400]) == pytest.approx(rms(source), rel=0.02)


def test_decode_pcm_44k_stereo(jfk: Audio) -> None:
    original = jfk[: 3 * SAMPLE_RATE]
    at_44k = resample(original, SAMPLE_RATE, 44_100)
    data = encode_linear16(np.stack([at_44k, at_44k], axis=1).reshape(-1))
    audio = decode_pcm(data, PcmEncoding.LINEAR16, 44_100, 2)
    assert abs(len(audio) - len(original)) <= 1
    n = min(len(audio), len(original))
    assert np.corrcoef(audio[:n], original[:n])[0, 1] > 0.999


def test_decode_pcm_empty_payload() -> None:
    with pytest.raises(EmptyAudio):
        decode_pcm(b"", PcmEncoding.LINEAR16, 16_000, 1)


# --- resampling ---------------------------------------------------------------------------------------------------


def test_resample_identity_at_16k(jfk: Audio) -> None:
    out = resample(jfk, SAMPLE_RATE)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, jfk)


def test_resample_keeps_pitch_and_level() -> None:
    source = tone(440, 44_100)
    out = resample(source, 44_100)
    assert out.dtype == np.float32
    assert len(out) == SAMPLE_RATE
    assert peak_hz(out) == pytest.approx(440, abs=2)
    assert rms(out[800:-800]) == pytest.approx(rms(source), rel=0.01)


def test_resample_filters_above_nyquist() -> None:
    passed, stopped = resample(tone(7000, 48_000), 48_000), resample(tone(9000, 48_000), 48_000)
    assert peak_hz(passed) == pytest.approx(7000, abs=2)
    assert rms(passed[800:-800]) > 0.9 * rms(tone(7000, 48_000))
    assert rms(stopped[800:-800]) < 0.01 * rms(tone(9000, 48_000))


@pytest.mark.parametrize("rate", [8000, 44_100, 48_000])
def test_stream_resampler_matches_one_shot(jfk: Audio, rate: int) -> None:
    source = resample(jfk[: 4 * SAMPLE_RATE], SAMPLE_RATE, rate)
    one_shot = resample(source, rate)
    sizes = np.random.default_rng(rate).integers(1, 4000, 200)
    bounds = np.cumsum(sizes)
    bounds = bounds[bounds < len(source)]
    chunks = np.split(source, bounds)
    streamer = StreamResampler(rate)
    out = np.concatenate([streamer.process(c, last=i == len(chunks) - 1) for i, c in enumerate(chunks)])
    assert out.dtype == np.float32
    assert abs(len(out) - len(one_shot)) <= 4
    n = min(len(out), len(one_shot))
    assert np.corrcoef(out[:n], one_shot[:n])[0, 1] > 0.999
    # After the last chunk it starts a new stream.
    again = np.concatenate(
        [streamer.process(source[: len(source) // 2]), streamer.process(source[len(source) // 2 :], last=True)]
    )
    assert abs(len(again) - len(one_shot)) <= 4


def test_stream_resampler_passthrough_at_16k() -> None:
    chunk = tone(300, SAMPLE_RATE, seconds=0.1)
    streamer = StreamResampler(SAMPLE_RATE)
    np.testing.assert_array_equal(streamer.process(chunk), chunk)
    np.testing.assert_array_equal(streamer.process(chunk, last=True), chunk)


def test_stream_resampler_checks_its_rate() -> None:
    with pytest.raises(InvalidSampleRate):
        StreamResampler(96_000)
