"""Container decoding on real recordings, and on files encoded here from them in every common format."""

from __future__ import annotations

import io
import struct
from collections.abc import Generator
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest
from av.audio.stream import AudioStream

from tests.speech import DATA
from voxgate.audio.decode import AudioInfo, decode, iter_decode, probe
from voxgate.audio.pcm import resample
from voxgate.errors import AudioDecodeError, EmptyAudio
from voxgate.types import SAMPLE_RATE, Audio

JFK = DATA / "en" / "jfk.flac"
HARVARD = DATA / "en" / "spk1_snt1.wav"
LICENSE_MP3 = DATA / "multilingual" / "en-de-license.mp3"
COMFYUI_MP3 = DATA / "vocabulary" / "comfyui.mp3"
STEREO_WAV = DATA / "two-speakers" / "stereo-two-speakers.wav"


@pytest.fixture(scope="module")
def jfk() -> Audio:
    return decode(JFK)


def write_audio(
    dest: Path | io.BytesIO, samples: npt.NDArray[np.float32], rate: int, *, fmt: str, codec: str, layout: str = "mono"
) -> None:
    """Encode ``samples`` (channels x n, or n for mono) with PyAV; the encoder converts format and frame size."""
    planes = np.ascontiguousarray(np.atleast_2d(samples), dtype=np.float32)
    target = str(dest) if isinstance(dest, Path) else dest
    with av.open(target, "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        assert isinstance(stream, AudioStream)
        if planes.shape[1]:
            frame = av.AudioFrame.from_ndarray(planes, format="fltp", layout=layout)
            frame.sample_rate = rate
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def tone(freq: float, rate: int, seconds: float = 1.0, amplitude: float = 0.5) -> npt.NDArray[np.float32]:
    t = np.arange(round(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def wav_bytes(samples: npt.NDArray[np.float32], rate: int, codec: str = "pcm_s16le", layout: str = "mono") -> bytes:
    buf = io.BytesIO()
    write_audio(buf, samples, rate, fmt="wav", codec=codec, layout=layout)
    return buf.getvalue()


def peak_hz(audio: Audio, rate: int = SAMPLE_RATE) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return float(np.fft.rfftfreq(len(audio), 1 / rate)[np.argmax(spectrum)])


def rms(audio: npt.NDArray[np.float32]) -> float:
    return float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))


def aligned_correlation(a: Audio, b: Audio, max_lag: int = 1600) -> tuple[int, float]:
    """Best lag of ``a`` against ``b`` within ``max_lag`` samples, and their correlation coefficient at that lag."""
    n = min(len(a), len(b))
    cc = np.fft.irfft(np.fft.rfft(a[:n], 2 * n) * np.conj(np.fft.rfft(b[:n], 2 * n)), 2 * n)
    lags = np.r_[np.arange(max_lag + 1), np.arange(-max_lag, 0)]
    lag = int(lags[np.argmax(cc[lags % (2 * n)])])
    x, y = (a[lag:n], b[: n - lag]) if lag >= 0 else (a[: n + lag], b[-lag:n])
    return lag, float(np.corrcoef(x, y)[0, 1])


# --- real recordings ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "seconds"),
    [(JFK, 11.0), (HARVARD, 2.87), (LICENSE_MP3, 59.9), (COMFYUI_MP3, 4.0), (STEREO_WAV, 5.0)],
    ids=["flac-44k-stereo", "wav-16k", "mp3-24k", "mp3-44k-stereo", "wav-stereo"],
)
def test_real_files_decode_to_float32_mono_16k(path: Path, seconds: float) -> None:
    audio = decode(path)
    assert audio.dtype == np.float32
    assert audio.ndim == 1
    # Exact length: 44.1 kHz -> 16 kHz loses nothing, the resampler's tail included (it is flushed).
    assert len(audio) == round(seconds * SAMPLE_RATE)
    assert 0.05 < np.abs(audio).max() <= 1.0
    assert rms(audio) > 0.01


def test_bytes_and_path_decode_the_same(jfk: Audio) -> None:
    np.testing.assert_array_equal(decode(JFK.read_bytes()), jfk)


def test_resampled_44k_flac_matches_an_independent_resampler(jfk: Audio) -> None:
    with av.open(str(JFK)) as container:
        native = np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1)
    # s32 interleaved stereo -> float mono at 44.1 kHz, then soxr to 16 kHz.
    mono = native.reshape(-1, 2).astype(np.float64).mean(axis=1) / 2**31
    expected = resample(mono.astype(np.float32), 44_100)
    lag, corr = aligned_correlation(jfk, expected, max_lag=50)
    assert lag == 0
    assert corr > 0.999


def decode_channel(source: Path, channel: int) -> Audio:
    return np.concatenate(list(iter_decode(source, channel=channel)))


def test_stereo_without_channel_mask_is_the_average_of_its_channels() -> None:
    audio = decode(STEREO_WAV)
    with av.open(str(STEREO_WAV)) as container:
        pcm = np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1)
    channels = pcm.reshape(-1, 2).astype(np.float32) / 32768
    np.testing.assert_allclose(audio, channels.mean(axis=1), atol=1e-6)
    # Both speakers are in the mix.
    for channel in channels.T:
        assert np.corrcoef(audio, channel)[0, 1] > 0.5


def test_one_channel_alone(tmp_path: Path) -> None:
    """Separate recognition per channel: each channel comes out on its own, named layout or not."""
    with av.open(str(STEREO_WAV)) as container:
        pcm = np.concatenate([f.to_ndarray() for f in container.decode(audio=0)], axis=1)
    channels = pcm.reshape(-1, 2).astype(np.float32) / 32768
    for index in (0, 1):
        np.testing.assert_allclose(decode_channel(STEREO_WAV, index), channels[:, index], atol=1e-6)
    x, y = tone(300, 44_100, amplitude=0.5), tone(700, 44_100, amplitude=0.2)
    path = tmp_path / "two.flac"
    write_audio(path, np.stack([x, y]), 44_100, fmt="flac", codec="flac", layout="stereo")
    right = decode_channel(path, 1)
    assert len(right) == pytest.approx(SAMPLE_RATE, abs=2)
    np.testing.assert_allclose(right[1000:-1000], resample(y, 44_100)[1000:-1000], atol=2e-3)  # resampled, unmixed
    with pytest.raises(AudioDecodeError, match="no channel 3"):
        decode_channel(path, 2)


def test_stereo_layout_downmix_keeps_level(tmp_path: Path) -> None:
    x = tone(300, SAMPLE_RATE, amplitude=0.8)
    same, opposite = tmp_path / "same.flac", tmp_path / "opposite.flac"
    write_audio(same, np.stack([x, x]), SAMPLE_RATE, fmt="flac", codec="flac", layout="stereo")
    write_audio(opposite, np.stack([x, -x]), SAMPLE_RATE, fmt="flac", codec="flac", layout="stereo")
    assert probe(same).channels == 2
    # (L + R) / 2: identical channels come out unchanged (not +3 dB), opposite ones cancel.
    np.testing.assert_allclose(decode(same), x, atol=1e-4)
    np.testing.assert_allclose(decode(opposite), 0, atol=1e-4)


def test_multichannel_without_layout_weights_channels_equally() -> None:
    # No channel mask: libswresample would guess 2.1 and drop the third channel as LFE.
    channels = np.stack(
        [tone(300, SAMPLE_RATE), tone(500, SAMPLE_RATE, amplitude=0.3), tone(700, SAMPLE_RATE, amplitude=0.2)]
    )
    data = wav_bytes(channels, SAMPLE_RATE, codec="pcm_f32le", layout="3 channels")
    assert probe(data).channels == 3
    np.testing.assert_allclose(decode(data), channels.mean(axis=0), atol=1e-6)


def test_surround_downmix_keeps_level() -> None:
    x = tone(300, SAMPLE_RATE, amplitude=0.8)
    data = wav_bytes(np.stack([x] * 6), SAMPLE_RATE, codec="pcm_f32le", layout="5.1")
    assert probe(data).channels == 6
    # The downmix weights sum to one: the same signal on every channel comes out at its own level, not 3.4 times it.
    np.testing.assert_allclose(decode(data), x, atol=1e-4)


def test_sample_rate_and_layout_change_mid_stream() -> None:
    # Two mp3s back to back: 44.1 kHz stereo, then 24 kHz mono, with an ID3 tag in between.
    first, second = decode(COMFYUI_MP3), decode(LICENSE_MP3)
    audio = decode(COMFYUI_MP3.read_bytes() + LICENSE_MP3.read_bytes())
    assert abs(len(audio) - len(first) - len(second)) < 0.1 * SAMPLE_RATE
    # Each part plays at its own speed: both line up with their separate decodes.
    assert aligned_correlation(audio[: len(first)], first)[1] > 0.99
    assert aligned_correlation(audio[-len(second) :], second)[1] > 0.99


def test_mp3_with_id3_tag_and_invalid_utf8_metadata() -> None:
    raw = COMFYUI_MP3.read_bytes()
    assert raw.startswith(b"ID3")
    tag_size = (raw[6] << 21) | (raw[7] << 14) | (raw[8] << 7) | raw[9]
    frames = raw[10 + tag_size :]
    payload = b"\x03bad \xff\xfe\xc3\x28 title"  # declared UTF-8, is not
    frame = b"TIT2" + struct.pack(">I", len(payload)) + b"\x00\x00" + payload
    size = len(frame)
    tag = b"ID3\x03\x00\x00" + bytes([(size >> 21) & 0x7F, (size >> 14) & 0x7F, (size >> 7) & 0x7F, size & 0x7F])
    audio = decode(tag + frame + frames)
    assert len(audio) == pytest.approx(4.0 * SAMPLE_RATE, abs=0.05 * SAMPLE_RATE)
    assert aligned_correlation(audio, decode(COMFYUI_MP3))[1] > 0.99


# --- other formats, encoded here from the JFK recording ----------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "codec", "rate", "suffix"),
    [
        ("ogg", "libopus", 48_000, "ogg"),
        ("webm", "libopus", 48_000, "webm"),
        ("ipod", "aac", 44_100, "m4a"),
        ("mp4", "aac", 48_000, "mp4"),
        ("adts", "aac", 44_100, "aac"),
        ("mp3", "libmp3lame", 44_100, "mp3"),
        ("flac", "flac", 48_000, "flac"),
        ("aiff", "pcm_s16be", 44_100, "aiff"),
        ("wav", "pcm_s16le", 8_000, "wav"),
        ("wav", "pcm_u8", 22_050, "wav"),
        ("wav", "pcm_f32le", 48_000, "wav"),
        ("wav", "pcm_mulaw", 8_000, "wav"),
    ],
)
def test_formats_decode_to_the_original(
    tmp_path: Path, jfk: Audio, fmt: str, codec: str, rate: int, suffix: str
) -> None:
    original = jfk[: 5 * SAMPLE_RATE]
    path = tmp_path / f"jfk.{suffix}"
    write_audio(path, resample(original, SAMPLE_RATE, rate), rate, fmt=fmt, codec=codec)

    info = probe(path)
    assert info.sample_rate == rate or (codec == "libopus" and info.sample_rate == 48_000)
    assert info.channels == 1
    assert info.duration is not None
    # Raw ADTS has no length field: its duration is estimated from the bit rate.
    assert info.duration == pytest.approx(5.0, abs=0.5 if fmt == "adts" else 0.05)

    audio = decode(path)
    assert audio.dtype == np.float32
    assert abs(len(audio) - len(original)) <= 0.05 * SAMPLE_RATE  # lossy codecs add priming and padding
    lag, corr = aligned_correlation(audio, original)
    assert abs(lag) <= 0.05 * SAMPLE_RATE
    assert corr > 0.95


def test_probe_describes_the_first_audio_stream() -> None:
    assert probe(JFK) == AudioInfo(duration=11.0, sample_rate=44_100, channels=2, codec="flac", container="flac")
    info = probe(LICENSE_MP3.read_bytes())
    assert (info.sample_rate, info.channels, info.codec, info.container) == (24_000, 1, "mp3", "mp3")
    assert info.duration == pytest.approx(59.95, abs=0.1)


# --- resampling is filtering, not sample dropping -----------------------------------------------------------------


def test_440hz_at_44k_stays_440hz() -> None:
    audio = decode(wav_bytes(tone(440, 44_100), 44_100))
    assert len(audio) == SAMPLE_RATE
    assert peak_hz(audio) == pytest.approx(440, abs=2)
    assert rms(audio[800:-800]) == pytest.approx(rms(tone(440, 44_100)), rel=0.02)


def test_7khz_at_48k_passes() -> None:
    source = tone(7000, 48_000)
    audio = decode(wav_bytes(source, 48_000, codec="pcm_f32le"))
    assert peak_hz(audio) == pytest.approx(7000, abs=2)
    assert rms(audio[800:-800]) > 0.85 * rms(source)


@pytest.mark.parametrize("rate", [48_000, 44_100])
def test_9khz_is_filtered_out_not_aliased(rate: int) -> None:
    # Above the 8 kHz Nyquist of 16 kHz: dropping samples would fold it back to ~7 kHz at full level.
    source = tone(9000, rate)
    audio = decode(wav_bytes(source, rate, codec="pcm_f32le"))
    assert len(audio) == SAMPLE_RATE
    assert rms(audio[800:-800]) < 0.01 * rms(source)  # at least 40 dB down


# --- chunked decoding ---------------------------------------------------------------------------------------------


def test_iter_decode_chunks_have_the_exact_size(jfk: Audio) -> None:
    chunks = list(iter_decode(JFK, chunk_seconds=2.5))
    assert [len(c) for c in chunks] == [40_000] * 4 + [16_000]
    assert all(c.dtype == np.float32 for c in chunks)
    np.testing.assert_array_equal(np.concatenate(chunks), jfk)


def test_iter_decode_long_mp3_in_30s_chunks() -> None:
    assert [len(c) for c in iter_decode(LICENSE_MP3)] == [480_000, 478_400]


def test_iter_decode_is_lazy_and_can_stop_early() -> None:
    chunks = iter_decode(LICENSE_MP3.read_bytes(), chunk_seconds=1.0)
    first = next(chunks)
    assert len(first) == SAMPLE_RATE
    assert isinstance(chunks, Generator)
    chunks.close()


@pytest.mark.parametrize("seconds", [0.0, -1.0, float("nan"), 1e-6])
def test_iter_decode_rejects_a_bad_chunk_size_at_once(seconds: float) -> None:
    with pytest.raises(ValueError, match="chunk_seconds"):
        iter_decode(JFK, chunk_seconds=seconds)


# --- bad input ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"not audio at all" * 100, id="text"),
        pytest.param(b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00", id="truncated-wav-header"),
        pytest.param(np.random.default_rng(0).bytes(20_000), id="random"),
        pytest.param(b"fLaC\x00\x00\x00\x22" + bytes(8), id="truncated-flac-header"),
        pytest.param(
            b"RIFF\x34\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x34\x12\x01\x00\x80\x3e\x00\x00\x00\x7d\x00\x00"
            b"\x02\x00\x10\x00data\x10\x00\x00\x00" + bytes(16),
            id="wav-unknown-codec",
        ),
    ],
)
def test_corrupt_input_raises_audio_decode_error(data: bytes) -> None:
    for call in (decode, probe):
        with pytest.raises(AudioDecodeError, match=r"^could not decode audio: ") as caught:
            call(data)
        assert type(caught.value) is AudioDecodeError


def test_truncated_real_files_do_not_leak_pyav_errors() -> None:
    for path in (JFK, LICENSE_MP3, HARVARD):
        raw = path.read_bytes()
        for cut in (20, 100, 1000, len(raw) // 2):
            try:
                audio = decode(raw[:cut])
            except (AudioDecodeError, EmptyAudio):
                continue
            assert audio.dtype == np.float32  # a decodable prefix is fine


def test_damaged_packets_are_skipped_but_mostly_damaged_input_is_refused(jfk: Audio) -> None:
    buf = io.BytesIO()
    write_audio(buf, resample(jfk[: 5 * SAMPLE_RATE], SAMPLE_RATE, 44_100), 44_100, fmt="ipod", codec="aac")
    raw, rng = buf.getvalue(), np.random.default_rng(7)

    def damaged(fraction: float) -> bytes:
        start, size = len(raw) // 4, int(len(raw) * fraction)
        return raw[:start] + rng.bytes(size) + raw[start + size :]

    # A few bad packets cost a few frames, as with ffmpeg.
    assert len(decode(damaged(0.02))) == pytest.approx(5 * SAMPLE_RATE, rel=0.05)
    with pytest.raises(AudioDecodeError, match="could not decode audio"):
        decode(damaged(0.5))


def test_missing_file_raises_audio_decode_error(tmp_path: Path) -> None:
    with pytest.raises(AudioDecodeError, match="could not decode audio"):
        decode(tmp_path / "missing.wav")


def test_no_audio_stream() -> None:
    buf = io.BytesIO()
    with av.open(buf, "w", format="matroska") as out:
        stream = out.add_stream("mpeg4", rate=5)
        stream.width = stream.height = 16
        stream.pix_fmt = "yuv420p"
        for packet in stream.encode(av.VideoFrame.from_ndarray(np.zeros((16, 16, 3), np.uint8), format="rgb24")):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    for call in (decode, probe):
        with pytest.raises(AudioDecodeError, match="no audio stream in the input"):
            call(buf.getvalue())


def empty_wav(rate: int = SAMPLE_RATE) -> bytes:
    """A canonical 44-byte WAV header, 16-bit mono, with a data chunk of zero bytes."""
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    return b"RIFF" + struct.pack("<I", 36) + b"WAVEfmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", 0)


def test_empty_wav_raises_empty_audio() -> None:
    data = empty_wav()
    info = probe(data)
    assert (info.sample_rate, info.channels, info.codec, info.container) == (SAMPLE_RATE, 1, "pcm_s16le", "wav")
    assert not info.duration
    with pytest.raises(EmptyAudio, match="no samples"):
        decode(data)
    with pytest.raises(EmptyAudio):
        list(iter_decode(data))
    # A real recording cut right after its header.
    with pytest.raises(EmptyAudio):
        decode(HARVARD.read_bytes()[:44])


def test_empty_bytes_raise_empty_audio() -> None:
    with pytest.raises(EmptyAudio):
        decode(b"")
