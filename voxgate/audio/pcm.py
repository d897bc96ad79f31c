"""Raw PCM: LINEAR16 / MULAW / ALAW bytes to float32 mono 16 kHz, whole (REST) or chunk by chunk (streaming)."""

from __future__ import annotations

import io
import wave
from enum import StrEnum

import numpy as np
import numpy.typing as npt
import soxr

from voxgate.errors import EmptyAudio, InvalidAudioEncoding, InvalidPcm, InvalidRequest, InvalidSampleRate
from voxgate.types import SAMPLE_RATE, Audio

__all__ = [
    "MAX_CHANNELS",
    "MAX_SAMPLE_RATE",
    "MIN_SAMPLE_RATE",
    "PcmEncoding",
    "StreamResampler",
    "check_sample_rate",
    "decode_pcm",
    "encode_linear16",
    "encode_wav",
    "pcm_to_float",
    "resample",
]

MIN_SAMPLE_RATE = 8000
MAX_SAMPLE_RATE = 48000
MAX_CHANNELS = 8


class PcmEncoding(StrEnum):
    LINEAR16 = "LINEAR16"
    """Signed 16-bit little-endian."""
    MULAW = "MULAW"
    """G.711 mu-law, 8 bits a sample."""
    ALAW = "ALAW"
    """G.711 A-law, 8 bits a sample."""


def _mulaw_table() -> Audio:
    """ITU-T G.711 mu-law expansion of every byte, scaled to [-1, 1] (full scale 32768)."""
    code = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (code >> 4) & 0x07
    mantissa = code & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    linear = np.where(code & 0x80, -magnitude, magnitude)
    return (linear / 32768.0).astype(np.float32)


def _alaw_table() -> Audio:
    """ITU-T G.711 A-law expansion of every byte, scaled to [-1, 1] (full scale 32768)."""
    code = np.arange(256, dtype=np.int32) ^ 0x55
    exponent = (code >> 4) & 0x07
    mantissa = code & 0x0F
    magnitude = np.where(
        exponent == 0,
        (mantissa << 4) + 8,
        ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0),
    )
    linear = np.where(code & 0x80, magnitude, -magnitude)
    return (linear / 32768.0).astype(np.float32)


MULAW_TABLE: Audio = _mulaw_table()
ALAW_TABLE: Audio = _alaw_table()


def check_sample_rate(rate: int) -> None:
    """Raise :class:`InvalidSampleRate` unless ``rate`` is a whole number of Hz in the supported range."""
    if (
        isinstance(rate, bool)
        or not isinstance(rate, int | np.integer)
        or not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE
    ):
        raise InvalidSampleRate(
            f"sample rate {rate!r} Hz is not supported: it must be an integer from {MIN_SAMPLE_RATE} to "
            f"{MAX_SAMPLE_RATE} Hz"
        )


def pcm_to_float(data: bytes, encoding: PcmEncoding | str, channels: int = 1, channel: int | None = None) -> Audio:
    """Convert raw PCM bytes (interleaved when ``channels`` > 1) to float32 mono in [-1, 1]: the channels averaged,
    or only ``channel`` (0-based) when given."""
    try:
        encoding = PcmEncoding(encoding)
    except ValueError:
        allowed = ", ".join(PcmEncoding)
        raise InvalidAudioEncoding(f"unsupported PCM encoding {encoding!r}: expected one of {allowed}") from None
    if isinstance(channels, bool) or not isinstance(channels, int) or not 1 <= channels <= MAX_CHANNELS:
        raise InvalidRequest(f"number of channels {channels!r} is not supported: it must be from 1 to {MAX_CHANNELS}")
    width = 2 if encoding is PcmEncoding.LINEAR16 else 1
    frame_bytes = width * channels
    if len(data) % frame_bytes:
        raise InvalidPcm(
            f"{encoding} audio with {channels} channel(s) must be a multiple of {frame_bytes} bytes, "
            f"got {len(data)} bytes"
        )
    samples: Audio
    if encoding is PcmEncoding.LINEAR16:
        samples = np.frombuffer(data, dtype="<i2").astype(np.float32) / np.float32(32768.0)
    else:
        table = MULAW_TABLE if encoding is PcmEncoding.MULAW else ALAW_TABLE
        samples = table[np.frombuffer(data, dtype=np.uint8)]
    if channel is not None:
        if not 0 <= channel < channels:
            raise InvalidRequest(f"the audio has {channels} channel(s), no channel {channel + 1}")
        samples = np.ascontiguousarray(samples.reshape(-1, channels)[:, channel])
    elif channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1, dtype=np.float32)
    return samples


def resample(audio: Audio, from_rate: int, to_rate: int = SAMPLE_RATE) -> Audio:
    """Resample mono float audio with soxr (high quality, proper anti-aliasing); float32 out."""
    if from_rate <= 0 or to_rate <= 0:
        raise InvalidSampleRate(f"sample rates must be positive, got {from_rate} -> {to_rate} Hz")
    samples = np.ascontiguousarray(audio, dtype=np.float32)
    if from_rate == to_rate or samples.size == 0:
        return samples
    out: npt.NDArray[np.float32] = soxr.resample(samples, from_rate, to_rate, quality="HQ")
    return out.astype(np.float32, copy=False)


class StreamResampler:
    """Chunk-by-chunk resampling of one mono stream to 16 kHz, with filter state kept across chunks.

    Pass ``last=True`` with the final chunk to drain the filter; the resampler is then ready for a new stream.
    """

    def __init__(self, in_rate: int) -> None:
        check_sample_rate(in_rate)
        self.in_rate = in_rate
        self._stream: soxr.ResampleStream | None = None
        if in_rate != SAMPLE_RATE:
            self._stream = soxr.ResampleStream(in_rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")

    def process(self, chunk: Audio, last: bool = False) -> Audio:
        """Resample the next chunk; the output lags the input by the filter delay until ``last``."""
        samples = np.ascontiguousarray(chunk, dtype=np.float32)
        if self._stream is None:
            return samples
        out: npt.NDArray[np.float32] = self._stream.resample_chunk(samples, last=last)
        if last:
            self._stream.clear()
        return out.astype(np.float32, copy=False)


def decode_pcm(
    data: bytes, encoding: PcmEncoding | str, sample_rate: int, channels: int = 1, channel: int | None = None
) -> Audio:
    """Decode a whole raw PCM payload to float32 mono 16 kHz (the downmix, or ``channel`` alone); raises
    :class:`EmptyAudio` when it holds no samples."""
    check_sample_rate(sample_rate)
    samples = pcm_to_float(data, encoding, channels, channel)
    if samples.size == 0:
        raise EmptyAudio("the audio contains no samples")
    return resample(samples, sample_rate)


def encode_wav(audio: Audio) -> bytes:
    """16 kHz mono audio as a 16-bit WAV file (what voxgate sends every cloud provider)."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(encode_linear16(audio))
    return buffer.getvalue()


def encode_linear16(audio: Audio) -> bytes:
    """Float audio to LINEAR16 bytes (signed 16-bit little-endian), clipped to full scale; NaN becomes silence."""
    scaled = np.nan_to_num(np.asarray(audio, dtype=np.float64), nan=0.0) * 32768.0
    return np.clip(np.rint(scaled), -32768, 32767).astype("<i2").tobytes()
