"""Cut a long stream of audio into windows at quiet points, so a file of any length is processed in bounded memory.

A window is cut at the quietest 200 ms frame of its last ``search`` samples, so a cut almost always falls in a pause
between words rather than inside one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np

from voxgate.types import SAMPLE_RATE, Audio

__all__ = ["iter_windows", "quietest_cut"]

_FRAME = SAMPLE_RATE // 5


def quietest_cut(audio: Audio, search: int) -> int:
    """Index at the centre of the quietest 200 ms frame within the last ``search`` samples of ``audio``."""
    start = max(0, len(audio) - search)
    tail = audio[start:]
    frames = len(tail) // _FRAME
    if frames < 2:
        return len(audio)
    energy = np.square(tail[: frames * _FRAME].reshape(frames, _FRAME)).mean(axis=1)
    return start + int(np.argmin(energy)) * _FRAME + _FRAME // 2


def iter_windows(
    chunks: Iterable[Audio], *, window_seconds: float, search_seconds: float = 10.0
) -> Iterator[tuple[int, Audio]]:
    """Yield ``(offset in samples, window)`` pairs covering ``chunks`` exactly once, none longer than the window."""
    window = max(int(window_seconds * SAMPLE_RATE), 2 * _FRAME)
    search = min(int(search_seconds * SAMPLE_RATE), window // 2)
    pending: list[Audio] = []
    size = 0
    offset = 0
    for chunk in chunks:
        pending.append(chunk)
        size += len(chunk)
        # Wait for ``search`` samples beyond the window: the stream may still continue right after it.
        while size >= window + search:
            buffer = np.concatenate(pending)
            cut = quietest_cut(buffer[:window], search)
            yield offset, buffer[:cut]
            offset += cut
            pending, size = [buffer[cut:]], len(buffer) - cut
    if not size:
        return
    buffer = np.concatenate(pending)
    while len(buffer) > window:
        cut = quietest_cut(buffer[:window], search)
        yield offset, buffer[:cut]
        offset += cut
        buffer = buffer[cut:]
    yield offset, buffer
