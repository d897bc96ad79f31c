"""A growable float32 sample buffer addressed by absolute sample offsets, trimmed from the front."""

from __future__ import annotations

import numpy as np

from voxgate.types import Audio

__all__ = ["SampleBuffer"]


class SampleBuffer:
    """Appends in amortised O(1) (capacity doubles), never ``np.append`` per chunk; memory is what is kept."""

    def __init__(self, start: int = 0, capacity: int = 16_000) -> None:
        self._data = np.zeros(max(1, capacity), dtype=np.float32)
        self._size = 0
        self.start = start
        """Absolute offset of the first kept sample."""

    @property
    def end(self) -> int:
        """Absolute offset one past the last sample."""
        return self.start + self._size

    def __len__(self) -> int:
        return self._size

    def append(self, samples: Audio) -> None:
        need = self._size + len(samples)
        if need > len(self._data):
            grown = np.zeros(max(need, 2 * len(self._data)), dtype=np.float32)
            grown[: self._size] = self._data[: self._size]
            self._data = grown
        self._data[self._size : need] = samples
        self._size = need

    def view(self, start: int | None = None, end: int | None = None) -> Audio:
        """A copy of the samples in the absolute range [start, end), clipped to what is kept."""
        lo = max(self.start, self.start if start is None else start) - self.start
        hi = min(self.end, self.end if end is None else end) - self.start
        return self._data[lo : max(lo, hi)].copy()

    def trim_to(self, start: int) -> None:
        """Forget every sample before absolute offset ``start``."""
        drop = min(max(0, start - self.start), self._size)
        if drop:
            self._data[: self._size - drop] = self._data[drop : self._size]
            self._size -= drop
            self.start += drop
        if len(self._data) > 4 * max(self._size, 16_000):  # give memory back after a long turn is trimmed
            self._data = self._data[: max(2 * self._size, 16_000)].copy()
