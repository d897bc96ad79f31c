"""The WebSocket wire schemas and their conversion to the session's domain types."""

from __future__ import annotations

import pytest

from voxgate.errors import ProtocolViolation
from voxgate.protocol.ws import TranscribeConfigMessage, TurnDetection, parse_client_message
from voxgate.streaming.policy import TurnMode, TurnPolicy


def test_default_turn_detection_is_the_default_policy() -> None:
    assert TurnDetection().to_policy() == TurnPolicy()


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("automatic", TurnMode.SEMANTIC), ("AUTO", TurnMode.SEMANTIC), ("server_vad", TurnMode.VAD),
     ("manual", TurnMode.MANUAL), ("vad", TurnMode.VAD)],
)  # fmt: skip
def test_mode_aliases_are_normalised_before_the_policy(mode: str, expected: TurnMode) -> None:
    assert TurnDetection.model_validate({"mode": mode}).to_policy().mode is expected


def test_every_turn_field_reaches_the_policy() -> None:
    message = parse_client_message(
        '{"transcribeConfig": {"turnDetection": {"mode": "vad", "silenceMs": 450, "pauseMs": 150, "threshold": 0.3,'
        ' "maxSilenceMs": 3000, "vadThreshold": 0.6}}}'
    )
    assert isinstance(message, TranscribeConfigMessage)
    policy = message.transcribe_config.turn_detection.to_policy()
    assert policy == TurnPolicy(
        mode=TurnMode.VAD, silence_ms=450, pause_ms=150, threshold=0.3, max_silence_ms=3000, vad_threshold=0.6
    )


def test_turn_bounds_are_checked_on_the_wire() -> None:
    with pytest.raises(ProtocolViolation, match="silenceMs"):
        parse_client_message('{"transcribeConfig": {"turnDetection": {"silenceMs": 5}}}')
