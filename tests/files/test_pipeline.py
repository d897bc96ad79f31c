"""The one file pipeline: what the operator's decode limits do to a request."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.server.wsutil import fork_service
from voxgate.errors import AudioError
from voxgate.service import Service
from voxgate.types import TranscriptionOptions


async def test_the_settings_limits_reach_the_decoder(service: Service, data: Path) -> None:
    """``max_audio_seconds`` set lower than a file's length refuses it, from the header, before any decode."""
    with fork_service(service, "whisper/tiny.en", max_audio_seconds=5.0) as short:
        with pytest.raises(AudioError) as refused:
            await short.transcribe_file(data / "en" / "jfk.flac", TranscriptionOptions(), "whisper/tiny.en")
        assert refused.value.code == "audio_too_long"
        ok = await short.transcribe_file(data / "en" / "spk1_snt1.wav", TranscriptionOptions(), "whisper/tiny.en")
    assert "dog" in ok.transcript.text.lower()
