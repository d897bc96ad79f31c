"""One mapping from every route's request to what the core takes."""

from __future__ import annotations

from voxgate.protocol.http import TranscribeConfig
from voxgate.protocol.options import diarization, options_of, session_config, transcription_options, wants_profile
from voxgate.protocol.ws import StreamTranscribeConfig
from voxgate.streaming.policy import TurnMode, TurnPolicy
from voxgate.types import DiarizationOptions, TranscriptionOptions

_FIELDS = {
    "language": "pt-BR",
    "prompts": ["voxgate", "  ", "Praat"],
    "includeWordTimestamps": False,
    "voiceProfileConfig": {"enableVoiceProfile": True, "topN": 2},
    "diarizationConfig": {"enableSpeakerDiarization": True, "maxSpeakerCount": 3},
}


def test_rest_and_websocket_configs_ask_the_same_of_the_core() -> None:
    rest = TranscribeConfig.model_validate(_FIELDS)
    stream = StreamTranscribeConfig.model_validate(_FIELDS)
    expected = TranscriptionOptions(language="pt", prompts=("voxgate", "Praat"), word_timestamps=False)
    assert options_of(rest) == options_of(stream) == expected
    assert wants_profile(rest)
    assert wants_profile(stream)
    assert diarization(rest) == diarization(stream) == DiarizationOptions(min_speakers=1, max_speakers=3)


def test_a_config_that_sets_nothing_gets_the_defaults() -> None:
    assert options_of(TranscribeConfig()) == TranscriptionOptions()
    assert not wants_profile(TranscribeConfig())
    assert diarization(TranscribeConfig()) is None
    assert diarization(TranscribeConfig.model_validate({"diarizationConfig": {}})) is None


def test_openai_fields_reach_the_same_options() -> None:
    options = transcription_options(language="auto", prompt="", temperature=0.4, task="translate")
    assert options == TranscriptionOptions(language=None, prompt=None, temperature=0.4, task="translate")
    assert transcription_options(language="EN", prompt="Hello, Dr. Smith.").prompt == "Hello, Dr. Smith."


def test_stream_config_becomes_the_session_config() -> None:
    cfg = StreamTranscribeConfig.model_validate(
        {**_FIELDS, "turnDetection": {"mode": "automatic", "maxSilenceMs": 1500}, "partialIntervalMs": 250,
         "enablePartials": False, "profileIntervalMs": 2000}
    )  # fmt: skip
    session = session_config(cfg)
    assert session.options == options_of(cfg)
    assert session.turn == TurnPolicy(mode=TurnMode.SEMANTIC, max_silence_ms=1500)
    assert session.partial_interval == 0.25
    assert session.partials is False
    assert session.profile is True
    assert session.profile_interval == 2.0
    assert session.diarize == DiarizationOptions(max_speakers=3)
