"""Decode any common audio file (wav, flac, mp3, ogg/opus, m4a/aac, webm, aiff, ...) to float32 mono 16 kHz: all
channels mixed down, or one channel alone (for separate recognition per channel).

Decoding streams: frames go through libswresample as they come out of the decoder, and samples leave in fixed-size
chunks, so memory stays bounded by one chunk whatever the length of the input.

Input is untrusted. Only the audio containers in :data:`ALLOWED_FORMATS` are opened (FFmpeg's playlists, concat, SDP,
image sequences and the like would read files or open sockets), nested inputs are refused (no FFmpeg protocol is
allowed: the input is always read through a Python file object), and :class:`DecodeLimits` bounds channels, sample
rate, duration and the seconds of audio each input byte may carry: from the header before any sample is decoded,
then again frame by frame while decoding (a header may lie).
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

import av
import av.error
import numpy as np
from av.audio.frame import AudioFrame
from av.audio.layout import AudioLayout
from av.audio.stream import AudioStream
from av.container import InputContainer

from voxgate.errors import AudioDecodeError, AudioTooLong, EmptyAudio, TooManyChannels, UnsupportedSampleRate
from voxgate.types import SAMPLE_RATE, Audio

if TYPE_CHECKING:
    from voxgate.config import Settings

__all__ = ["ALLOWED_FORMATS", "AudioInfo", "DecodeLimits", "decode", "iter_decode", "probe"]

ALLOWED_FORMATS = (
    "wav",
    "w64",
    "flac",
    "mp3",
    "ogg",
    "mov",
    "mp4",
    "m4a",
    "matroska",
    "webm",
    "aiff",
    "aac",
    "caf",
    "au",
    "amr",
    "amrnb",
    "amrwb",
)
"""FFmpeg demuxers an input may be read with: audio containers people record and send. Everything else (hls,
concat, sdp/rtp, image2, tty, lavfi-like readers of other inputs, and hundreds of exotic formats) is refused."""

_OPEN_OPTIONS = {
    "format_whitelist": ",".join(ALLOWED_FORMATS),
    # Input comes through a Python file object; a demuxer that wants to open another input (a playlist entry, a
    # reference in a movie atom) must find no protocol at all.
    "protocol_whitelist": "none",
    "enable_drefs": "0",
}


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """What an input may be, checked from its header and again while it is decoded."""

    max_seconds: float = 4 * 3600.0
    """Longest audio decoded."""
    max_channels: int = 32
    """Most channels."""
    min_sample_rate: int = 4000
    max_sample_rate: int = 192_000
    min_bitrate: int = 2000
    """Bits of input that each second of audio must average (0: no bound). Past ``_FREE_SECONDS``, an input that
    decodes to more than ``size * 8 / min_bitrate`` seconds is refused: real speech codecs need 4.75 kbit/s (AMR) or
    6 kbit/s (Opus) and more, while a silent FLAC carries an hour in 657 KB (1.5 kbit/s)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> DecodeLimits:
        return cls(
            max_seconds=settings.max_audio_seconds,
            max_channels=settings.max_audio_channels,
            min_sample_rate=settings.min_audio_sample_rate,
            max_sample_rate=settings.max_audio_sample_rate,
            min_bitrate=settings.min_audio_bitrate,
        )

    def max_seconds_for(self, size: int) -> float:
        """Most seconds of audio an input of ``size`` bytes may decode to."""
        if self.min_bitrate <= 0:
            return self.max_seconds
        return min(self.max_seconds, _FREE_SECONDS + size * 8 / self.min_bitrate)

    def check_format(self, sample_rate: int, channels: int) -> None:
        if channels > self.max_channels:
            raise TooManyChannels(f"the audio has {channels} channels; at most {self.max_channels} are accepted")
        if not self.min_sample_rate <= sample_rate <= self.max_sample_rate:
            raise UnsupportedSampleRate(
                f"the audio's sample rate is {sample_rate} Hz; it must be from {self.min_sample_rate} to "
                f"{self.max_sample_rate} Hz"
            )

    def check_seconds(self, seconds: float, size: int) -> None:
        if seconds > self.max_seconds:
            raise AudioTooLong(f"the audio is longer than {self.max_seconds:g} s")
        if seconds > self.max_seconds_for(size):
            raise AudioTooLong(
                f"{size} bytes decode to over {seconds:.0f} s of audio, more than any real codec carries "
                f"(at least {self.min_bitrate} bit/s is expected)"
            )


DEFAULT_LIMITS = DecodeLimits()

_FREE_SECONDS = 30.0
"""Seconds of audio any input may hold whatever its size (headers make tiny files look dense)."""

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


def probe(source: bytes | Path, *, limits: DecodeLimits = DEFAULT_LIMITS, isolated: bool = False) -> AudioInfo:
    """Read the header of ``source`` and describe its first audio stream, without decoding it.

    Raises :class:`AudioDecodeError` for input that is not an accepted container, and the limit errors
    (:class:`TooManyChannels`, :class:`UnsupportedSampleRate`, :class:`AudioTooLong`) when the header exceeds
    ``limits``. ``isolated`` (the default): read in a worker process (:mod:`voxgate.audio.isolate`), where a crash of
    the native decoder becomes an :class:`AudioDecodeError`."""
    if isolated:
        from voxgate.audio.isolate import isolated_probe

        info: AudioInfo = isolated_probe(source, {"limits": limits})
        return info
    with _open(source) as (container, size):
        return _describe(container, size, limits)


def _describe(container: InputContainer, size: int, limits: DecodeLimits) -> AudioInfo:
    stream = _first_audio_stream(container)
    duration: float | None = None
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / av.time_base
    ctx = stream.codec_context
    limits.check_format(ctx.sample_rate, ctx.channels)
    # The header's duration against the cap only: a truncated file's header claims more than its bytes hold, so the
    # work-per-byte bound is checked on what actually decodes.
    if duration is not None and math.isfinite(duration) and duration > limits.max_seconds:
        raise AudioTooLong(f"the audio is {duration:.0f} s long; at most {limits.max_seconds:g} s is accepted")
    return AudioInfo(
        duration=duration,
        sample_rate=ctx.sample_rate,
        channels=ctx.channels,
        codec=ctx.codec.canonical_name,
        container=container.format.name,
    )


def iter_decode(
    source: bytes | Path,
    *,
    chunk_seconds: float = 30.0,
    channel: int | None = None,
    limits: DecodeLimits = DEFAULT_LIMITS,
    isolated: bool = False,
) -> Iterator[Audio]:
    """Stream-decode ``source`` to float32 mono 16 kHz chunks of exactly ``chunk_seconds`` (the last may be shorter):
    every channel mixed down, or only ``channel`` (0-based) when given.

    Raises :class:`AudioDecodeError` when the input is not decodable audio (or has no such channel) and
    :class:`EmptyAudio` when it decodes to no samples at all; the limit errors of :func:`probe` come from the header
    before any sample is decoded, or as soon as the decoded audio passes a limit. Errors surface while iterating, as
    the input is read. ``isolated`` (the default): decoded in a worker process (see :func:`probe`), chunks coming
    back one at a time as they are asked for.
    """
    chunk_size = round(chunk_seconds * SAMPLE_RATE) if math.isfinite(chunk_seconds) else 0
    if chunk_size < 1:
        raise ValueError(f"chunk_seconds must be a positive number of seconds, got {chunk_seconds!r}")
    if channel is not None and channel < 0:
        raise ValueError(f"channel must be 0 or more, got {channel}")
    if isolated:
        from voxgate.audio.isolate import isolated_iter_decode

        options = {"chunk_seconds": chunk_seconds, "channel": channel, "limits": limits}
        return isolated_iter_decode(source, options)
    return _iter_decode(source, chunk_size, channel, limits)


def decode(source: bytes | Path, *, limits: DecodeLimits = DEFAULT_LIMITS, isolated: bool = False) -> Audio:
    """Decode all of ``source`` to one float32 mono 16 kHz array."""
    chunks = list(iter_decode(source, limits=limits, isolated=isolated))
    return chunks[0] if len(chunks) == 1 else np.concatenate(chunks)


def _iter_decode(source: bytes | Path, chunk_size: int, channel: int | None, limits: DecodeLimits) -> Iterator[Audio]:
    chunker = _Chunker(chunk_size)
    with _open(source) as (container, size):
        _describe(container, size, limits)
        stream = _first_audio_stream(container)
        converter: _Converter | None = None
        seconds = 0.0
        for frame in _frames(container, stream):
            if frame.samples == 0:
                continue
            limits.check_format(frame.sample_rate, frame.layout.nb_channels)
            seconds += frame.samples / frame.sample_rate
            limits.check_seconds(seconds, size)
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


@contextmanager
def _open(source: bytes | Path) -> Iterator[tuple[InputContainer, int]]:
    """The container of ``source`` (bytes or a file, both read through a Python file object, so that FFmpeg opens
    nothing itself) and its size in bytes."""
    file: IO[bytes]
    if isinstance(source, bytes | bytearray | memoryview):
        if len(source) == 0:
            raise EmptyAudio("the audio contains no samples")
        file = io.BytesIO(source)
    else:
        try:
            file = open(source, "rb")  # noqa: SIM115 - closed below
        except OSError as exc:
            raise AudioDecodeError(f"could not decode audio: {exc.strerror or type(exc).__name__}") from exc
    with file:
        try:
            size = os.fstat(file.fileno()).st_size if not isinstance(file, io.BytesIO) else len(file.getbuffer())
            container = av.open(file, mode="r", metadata_errors="ignore", options=dict(_OPEN_OPTIONS))
        except av.error.ArgumentError as exc:
            # What FFmpeg answers for a format off the whitelist (EINVAL, before the demuxer reads anything).
            raise AudioDecodeError(
                "could not decode audio: not an accepted audio format (accepted: wav, flac, mp3, ogg/opus, "
                "m4a/mp4/mov, webm/mkv, aiff, aac, caf, au, amr, w64)"
            ) from exc
        except _PYAV_ERRORS as exc:
            raise _decode_error(exc) from exc
        except OSError as exc:
            raise AudioDecodeError(f"could not decode audio: {exc.strerror or type(exc).__name__}") from exc
        with container:
            if container.format.name not in ALLOWED_FORMATS and not (
                set(container.format.name.split(",")) & set(ALLOWED_FORMATS)
            ):
                raise AudioDecodeError(f"could not decode audio: the {container.format.name} format is not accepted")
            yield container, size


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
        self._channels = 1
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
        # Packed output (one plane, whatever the channel count): PyAV reads at most 8 planes of a planar frame and
        # crashes past that (SIGSEGV in to_ndarray on a 9-channel WAV).
        if self._average or self._channel is not None:
            self._channels = frame.layout.nb_channels
            self._resampler = av.AudioResampler(format="flt", rate=SAMPLE_RATE)
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
            if len(out.planes) != 1 or out.format.is_planar:
                raise AudioDecodeError("could not decode audio: unexpected planar output")  # never to_ndarray those
            data = out.to_ndarray().reshape(-1)
            if self._channel is not None:
                samples = data.reshape(-1, self._channels)[:, self._channel]
            elif self._average:
                samples = data.reshape(-1, self._channels).mean(axis=1, dtype=np.float32)
            else:
                samples = data
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
