"""Decode any common audio file (wav, flac, mp3, ogg/opus, m4a/aac, webm, aiff, ...) to float32 mono 16 kHz: all
channels mixed down, or one channel alone (for separate recognition per channel).

Decoding streams: frames go through libswresample as they come out of the decoder, and samples leave in fixed-size
chunks, so memory stays bounded by one chunk whatever the length of the input.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import av.error
import numpy as np
from av.audio.frame import AudioFrame
from av.audio.layout import AudioLayout
from av.audio.stream import AudioStream
from av.container import InputContainer

from voxgate.errors import AudioDecodeError, EmptyAudio
from voxgate.types import SAMPLE_RATE, Audio

__all__ = ["AudioInfo", "decode", "iter_decode", "probe"]

_PYAV_ERRORS = (av.error.FFmpegError, ValueError)
"""What PyAV raises on bad input (``InvalidDataError`` is both an ``FFmpegError`` and a ``ValueError``)."""

_BAD_PACKETS_TOLERATED = 8
"""Undecodable packets skipped before the input is refused, once they also make up over a tenth of all packets."""

_DOWNMIX_OPTIONS = {"rematrix_maxval": "1.0"}
"""libswresample leaves a float downmix unnormalised (stereo -> mono would be 0.707 * (L + R)); with this the
coefficients sum to 1, so stereo becomes (L + R) / 2 and 5.1 a centre-weighted average that stays in [-1, 1]."""


@dataclass(frozen=True, slots=True)
class AudioInfo:
    """What the container says about its first audio stream, before decoding."""

    duration: float | None
    """Seconds, or None when the container does not say."""
    sample_rate: int
    channels: int
    codec: str
    container: str


def probe(source: bytes | Path) -> AudioInfo:
    """Read the header of ``source`` and describe its first audio stream, without decoding it."""
    with _open(source) as container:
        stream = _first_audio_stream(container)
        duration: float | None = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        ctx = stream.codec_context
        return AudioInfo(
            duration=duration,
            sample_rate=ctx.sample_rate,
            channels=ctx.channels,
            codec=ctx.codec.canonical_name,
            container=container.format.name,
        )


def iter_decode(source: bytes | Path, *, chunk_seconds: float = 30.0, channel: int | None = None) -> Iterator[Audio]:
    """Stream-decode ``source`` to float32 mono 16 kHz chunks of exactly ``chunk_seconds`` (the last may be shorter):
    every channel mixed down, or only ``channel`` (0-based) when given.

    Raises :class:`AudioDecodeError` when the input is not decodable audio (or has no such channel) and
    :class:`EmptyAudio` when it decodes to no samples at all. Errors surface while iterating, as the input is read.
    """
    chunk_size = round(chunk_seconds * SAMPLE_RATE) if math.isfinite(chunk_seconds) else 0
    if chunk_size < 1:
        raise ValueError(f"chunk_seconds must be a positive number of seconds, got {chunk_seconds!r}")
    if channel is not None and channel < 0:
        raise ValueError(f"channel must be 0 or more, got {channel}")
    return _iter_decode(source, chunk_size, channel)


def decode(source: bytes | Path) -> Audio:
    """Decode all of ``source`` to one float32 mono 16 kHz array."""
    chunks = list(iter_decode(source))
    return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)


def _iter_decode(source: bytes | Path, chunk_size: int, channel: int | None) -> Iterator[Audio]:
    chunker = _Chunker(chunk_size)
    with _open(source) as container:
        stream = _first_audio_stream(container)
        converter: _Converter | None = None
        for frame in _frames(container, stream):
            if frame.samples == 0:
                continue
            if converter is not None and not converter.accepts(frame):
                # The stream changed rate, layout or sample format mid-way: drain the old converter, start anew.
                yield from chunker.add_all(converter.flush())
                converter = None
            if converter is None:
                converter = _Converter(frame, channel)
            yield from chunker.add_all(converter.feed(frame))
        if converter is not None:
            yield from chunker.add_all(converter.flush())
    if chunker.total == 0:
        raise EmptyAudio("the audio contains no samples")
    tail = chunker.tail()
    if tail is not None:
        yield tail


def _open(source: bytes | Path) -> InputContainer:
    if isinstance(source, bytes | bytearray | memoryview):
        if len(source) == 0:
            raise EmptyAudio("the audio contains no samples")
        file: io.BytesIO | str = io.BytesIO(source)
    else:
        file = str(source)
    try:
        return av.open(file, mode="r", metadata_errors="ignore")
    except _PYAV_ERRORS as exc:
        raise _decode_error(exc) from exc


def _first_audio_stream(container: InputContainer) -> AudioStream:
    if not container.streams.audio:
        raise AudioDecodeError("no audio stream in the input")
    stream = container.streams.audio[0]
    # PyAV leaves the codec context unset when FFmpeg has no decoder for the stream's codec.
    if getattr(stream, "codec_context", None) is None:
        raise AudioDecodeError("could not decode audio: unsupported audio codec")
    return stream


def _frames(container: InputContainer, stream: AudioStream) -> Iterator[AudioFrame]:
    """Decoded frames of ``stream``.

    A packet the decoder rejects is skipped, as ffmpeg does: a damaged frame, or an ID3 tag in the middle of
    concatenated mp3s, costs a few milliseconds of audio. Input where such packets keep coming is refused.
    """
    packets = bad = 0
    decoded = False
    last_error: Exception | None = None
    try:
        for packet in container.demux(stream):
            packets += 1
            try:
                frames = stream.decode(packet)
            except av.error.InvalidDataError as exc:
                bad += 1
                last_error = exc
                if bad > _BAD_PACKETS_TOLERATED and bad * 10 > packets:
                    raise
                continue
            decoded = decoded or bool(frames)
            yield from frames
    except _PYAV_ERRORS as exc:
        raise _decode_error(exc) from exc
    if last_error is not None and not decoded:
        raise _decode_error(last_error) from last_error


def _decode_error(exc: Exception) -> AudioDecodeError:
    reason = exc.strerror if isinstance(exc, av.error.FFmpegError) and exc.strerror else str(exc)
    return AudioDecodeError(f"could not decode audio: {reason or type(exc).__name__}")


def _signature(frame: AudioFrame) -> tuple[str, str, int]:
    return frame.format.name, frame.layout.name, frame.sample_rate


def _has_unknown_channels(layout: AudioLayout) -> bool:
    return layout.nb_channels > 1 and any(channel.name == "NONE" for channel in layout.channels)


class _Converter:
    """libswresample for one input (sample format, channel layout, rate): frames in, float32 mono 16 kHz out (the
    downmix, or one channel)."""

    def __init__(self, frame: AudioFrame, channel: int | None = None) -> None:
        self._channel = channel
        self._setup(frame)

    def _setup(self, frame: AudioFrame) -> None:
        self._signature = _signature(frame)
        if self._channel is not None and self._channel >= frame.layout.nb_channels:
            count = frame.layout.nb_channels
            raise AudioDecodeError(
                f"the audio has {count} channel{'s' if count != 1 else ''}, no channel {self._channel + 1}"
            )
        # A layout with unnamed channels (a WAV without channel mask) gives libswresample nothing to build a downmix
        # matrix from, and its guess can drop channels: resample every channel and average them with equal weight.
        # One channel alone: resample every channel (planar), keep that one.
        self._average = _has_unknown_channels(frame.layout)
        if self._average or self._channel is not None:
            self._resampler = av.AudioResampler(format="fltp", rate=SAMPLE_RATE)
        else:
            self._resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE, options=_DOWNMIX_OPTIONS)

    def accepts(self, frame: AudioFrame) -> bool:
        return _signature(frame) == self._signature

    def feed(self, frame: AudioFrame) -> list[Audio]:
        try:
            return self._to_arrays(self._resampler.resample(frame))
        except av.error.FFmpegError as exc:
            raise _decode_error(exc) from exc
        except ValueError:
            # PyAV refuses a frame unlike the one its resampler was set up with. The signature check in accepts()
            # should prevent that; should it happen anyway, drain this resampler and give the frame a fresh one.
            tail = self.flush()
            self._setup(frame)
            try:
                return tail + self._to_arrays(self._resampler.resample(frame))
            except _PYAV_ERRORS as exc:
                raise _decode_error(exc) from exc

    def flush(self) -> list[Audio]:
        try:
            return self._to_arrays(self._resampler.resample(None))
        except _PYAV_ERRORS as exc:
            raise _decode_error(exc) from exc

    def _to_arrays(self, frames: list[AudioFrame]) -> list[Audio]:
        # A passthrough resampler hands back the input frame, and [None] when flushed.
        arrays: list[Audio] = []
        for out in frames:
            if out is None or out.samples == 0:
                continue
            data = out.to_ndarray()
            if self._channel is not None:
                samples = data[self._channel]
            elif self._average:
                samples = data.mean(axis=0, dtype=np.float32)
            else:
                samples = data.reshape(-1)
            arrays.append(samples.astype(np.float32, copy=False))
        return arrays


class _Chunker:
    """Packs samples into chunks of exactly ``size``; holds at most one chunk."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._buffer: Audio = np.empty(size, dtype=np.float32)
        self._fill = 0
        self.total = 0

    def add_all(self, arrays: list[Audio]) -> Iterator[Audio]:
        for samples in arrays:
            yield from self.add(samples)

    def add(self, samples: Audio) -> Iterator[Audio]:
        self.total += samples.size
        start = 0
        while start < samples.size:
            take = min(self._size - self._fill, samples.size - start)
            self._buffer[self._fill : self._fill + take] = samples[start : start + take]
            self._fill += take
            start += take
            if self._fill == self._size:
                full, self._buffer, self._fill = self._buffer, np.empty(self._size, dtype=np.float32), 0
                yield full

    def tail(self) -> Audio | None:
        return self._buffer[: self._fill].copy() if self._fill else None
