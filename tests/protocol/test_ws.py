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
        ' "maxSilenceMs": 3000, "vadThreshold": 0.6, "earlyMs": 100, "earlyThreshold": 0.9}}}'
    )
    assert isinstance(message, TranscribeConfigMessage)
    policy = message.transcribe_config.turn_detection.to_policy()
    assert policy == TurnPolicy(
        mode=TurnMode.VAD,
        silence_ms=450,
        pause_ms=150,
        threshold=0.3,
        max_silence_ms=3000,
        vad_threshold=0.6,
        early_ms=100,
        early_threshold=0.9,
    )


def test_turn_bounds_are_checked_on_the_wire() -> None:
    with pytest.raises(ProtocolViolation, match="silenceMs"):
        parse_client_message('{"transcribeConfig": {"turnDetection": {"silenceMs": 5}}}')


@pytest.mark.parametrize(
    ("turn", "field"),
    [
        ('{"pauseMs": 200, "earlyMs": 200}', "earlyMs"),  # an early check at the pause is no early check
        ('{"earlyMs": -1}', "earlyMs"),
        ('{"earlyMs": 1}', "earlyMs"),  # a turn-model run per 32 ms frame of quiet: no shorter than a pause
        ('{"earlyMs": true}', "earlyMs"),
        ('{"threshold": 0.7, "earlyMs": 96, "earlyThreshold": 0.6}', "earlyThreshold"),  # it must be surer
    ],
)
def test_the_early_check_must_come_before_the_pause_and_be_surer(turn: str, field: str) -> None:
    with pytest.raises(ProtocolViolation, match=field):
        parse_client_message(f'{{"transcribeConfig": {{"turnDetection": {turn}}}}}')


def test_the_early_check_is_off_unless_asked_for() -> None:
    # Off by default, and then its threshold is not checked against a stricter turn threshold.
    message = parse_client_message('{"transcribeConfig": {"turnDetection": {"threshold": 1.0}}}')
    assert isinstance(message, TranscribeConfigMessage)
    assert message.transcribe_config.turn_detection.to_policy().early_ms == 0
