"""The engine tests' fixtures: the session's fake vendors, the real speech they transcribe, and ``fake`` and ``make``
for a module that names the cloud it tests with a ``cloud`` fixture (``cloud = cloud_fixture(DEEPGRAM, LOCAL)``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.engines.harness import Cloud, Fakes, Make, Speech, quick
from tests.speech import reference
from voxgate.audio.decode import decode
from voxgate.config import Settings
from voxgate.service import Service
from voxgate.types import Audio


@pytest.fixture(scope="session")
def fakes(settings: Settings, service: Service) -> Iterator[Fakes]:
    """The fake vendors, started when a test first asks for one."""
    served = Fakes(settings, service)
    yield served
    served.close()


@pytest.fixture
def fake(cloud: Cloud[Any]) -> Any:
    """The cloud's fake vendor (reset before and after the test)."""
    return cloud.fake


@pytest.fixture
def make(cloud: Cloud[Any]) -> Iterator[Make]:
    """:meth:`Cloud.engine`: engines pointed at the cloud's fake, with retries and polling in milliseconds."""
    with quick():
        yield cloud.engine


# -- real speech (tests/data), decoded once a session --------------------------------------------------------------


def _audio(path: str) -> Any:
    @pytest.fixture(scope="session")
    def audio(data: Path) -> Audio:
        return decode(data / path)

    return audio


def _speech(path: str) -> Any:
    @pytest.fixture(scope="session")
    def speech(data: Path) -> Speech:
        return Speech(decode(data / path), reference(data, path))

    return speech


jfk = _audio("en/jfk.flac")  # "And so, my fellow Americans: ask not what your country can do for you ..." (11 s)
sentence = _audio("en/spk1_snt1.wav")  # "The child almost hurt the small dog." (2.9 s)
short = _audio("en/spk2_snt2.wav")  # "What joy there is in living." (1.8 s)
comfyui = _audio("vocabulary/comfyui.mp3")  # a name Whisper does not know: "ComfyUI"
jfk_speech = _speech("en/jfk.flac")
harvard = _speech("en/spk1_snt2.wav")  # "Drop the two when you add the figures." (3.2 s)
