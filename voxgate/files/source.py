"""What a file transcription reads: an encoded file (bytes or a path) or headerless PCM, decoded lazily into 16 kHz
windows cut at quiet points."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

from voxgate.audio.decode import DEFAULT_LIMITS, DecodeLimits, iter_decode, probe
from voxgate.audio.pcm import PcmEncoding, decode_pcm
from voxgate.audio.windows import iter_windows
from voxgate.errors import AudioDecodeError, EmptyAudio
from voxgate.types import Audio

__all__ = ["AudioSource", "RawAudio", "channel_count", "duration_hint", "windows"]

_DECODE_CHUNK_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class RawAudio:
    """Headerless PCM: the caller says how to read it."""

    data: bytes
    encoding: PcmEncoding
    sample_rate: int
    channels: int = 1


AudioSource = bytes | Path | RawAudio


def duration_hint(source: AudioSource, limits: DecodeLimits = DEFAULT_LIMITS, isolated: bool = False) -> float:
    """Seconds of audio in ``source`` if its header says so, else 0."""
    if isinstance(source, RawAudio):
        width = 2 if source.encoding is PcmEncoding.LINEAR16 else 1
        return len(source.data) / width / source.channels / (source.sample_rate or 1)
    try:
        return probe(source, limits=limits, isolated=isolated).duration or 0.0
    except (AudioDecodeError, EmptyAudio):
        return 0.0  # decoding proper reports the problem


def windows(
    source: AudioSource,
    window_seconds: float,
    channel: int | None = None,
    limits: DecodeLimits = DEFAULT_LIMITS,
    isolated: bool = False,
) -> Generator[tuple[int, Audio], None, None]:
    """Decode ``source`` lazily into 16 kHz windows cut at quiet points (its downmix, or one 0-based channel), each
    with its offset in samples."""
    chunks: Iterator[Audio]
    if isinstance(source, RawAudio):
        chunks = iter([decode_pcm(source.data, source.encoding, source.sample_rate, source.channels, channel)])
    else:
        chunks = iter_decode(
            source, chunk_seconds=_DECODE_CHUNK_SECONDS, channel=channel, limits=limits, isolated=isolated
        )
    try:
        yield from iter_windows(chunks, window_seconds=window_seconds)
    finally:
        if isinstance(chunks, Generator):
            chunks.close()  # hands a worker process back at once


def channel_count(source: AudioSource, limits: DecodeLimits = DEFAULT_LIMITS, isolated: bool = False) -> int:
    """How many channels ``source`` has (its header's word for a container)."""
    if isinstance(source, RawAudio):
        return source.channels
    return probe(source, limits=limits, isolated=isolated).channels
