"""Long real speech for jobs that must still be running when a test acts on them."""

from __future__ import annotations

import functools

import numpy as np

from tests.speech import DATA
from voxgate.audio.decode import decode
from voxgate.audio.pcm import encode_wav


@functools.cache
def long_wav(repeats: int) -> bytes:
    """``en/jfk.flac`` (11 s) ``repeats`` times over, as a WAV file."""
    return encode_wav(np.concatenate([decode(DATA / "en" / "jfk.flac")] * repeats))
