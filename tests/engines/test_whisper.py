"""What only Whisper's models do (the contract every engine keeps is in ``test_contract.py``)."""

from __future__ import annotations

import numpy as np
import pytest

from voxgate.errors import InvalidRequest
from voxgate.service import Service
from voxgate.types import TranscriptionOptions


def test_english_only_model_refuses_other_languages_and_translation(service: Service, jfk: np.ndarray) -> None:
    tiny = service.engine("whisper/tiny.en")
    with pytest.raises(InvalidRequest, match="English only"):
        tiny.transcribe(jfk, TranscriptionOptions(language="de"))
    with pytest.raises(InvalidRequest, match="cannot translate"):
        tiny.transcribe(jfk, TranscriptionOptions(task="translate"))
