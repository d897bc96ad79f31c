"""One mapping from every route's request to what the core takes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from voxgate.errors import InvalidRequest, ProtocolViolation
from voxgate.protocol.http import AudioEncoding, TranscribeConfig
from voxgate.protocol.options import (
    diarization,
    inactivity_timeout,
    options_of,
    session_config,
    transcription_options,
    turn_policy,
    wants_profile,
)
from voxgate.protocol.ws import StreamEncoding, StreamTranscribeConfig, parse_client_message
from voxgate.streaming.policy import TurnMode, TurnPolicy
from voxgate.types import (
    AssemblyAIOptions,
    DeepgramOptions,
    DiarizationOptions,
    GroqOptions,
    SonioxOptions,
    TranscriptionOptions,
)

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


# -- the reference's second pass: the prompts rule, provider blocks, turn fields ------------------------------------


def _both(fields: dict[str, Any]) -> tuple[TranscribeConfig, StreamTranscribeConfig]:
    return TranscribeConfig.model_validate(fields), StreamTranscribeConfig.model_validate(fields)


@pytest.mark.parametrize("item", ["#hashtag", "a/b", "me@example.com", "left|right"])
def test_prompts_with_the_references_forbidden_characters_are_invalid_arguments(item: str) -> None:
    for config in _both({"prompts": ["fine", item]}):
        with pytest.raises(InvalidRequest) as refused:
            options_of(config)
        assert refused.value.code == "invalid_argument"
        assert "prompts[1]" in refused.value.message


def test_prompts_without_them_pass() -> None:
    for config in _both({"prompts": ["Dr. Smith's", "C++", "e-mail", "50%"]}):
        assert options_of(config).prompts == ("Dr. Smith's", "C++", "e-mail", "50%")


_BLOCKS: dict[str, tuple[dict[str, Any], str, object]] = {
    "deepgramConfig": (
        {"keyterms": ["ComfyUI", " "], "smartFormat": False, "endpointing": 300},
        "deepgram/nova-3",
        DeepgramOptions(keyterms=("ComfyUI",), smart_format=False, endpointing=300),
    ),
    "assemblyaiConfig": (
        {"minEndOfTurnSilenceWhenConfident": 160, "maxTurnSilence": 1200, "vadThreshold": 0.4, "prompt": " Be terse "},
        "assemblyai/u3-rt-pro",
        AssemblyAIOptions(vad_threshold=0.4, prompt="Be terse"),
    ),
    "sonioxConfig": (
        {"languageHints": ["de-DE", "en", "en-GB"], "languageHintsStrict": True, "enableEndpointDetection": True,
         "maxEndpointDelayMs": 800,
         "context": {"general": [{"key": "domain", "value": "medicine"}], "text": "A consult.", "terms": ["Lasix"]}},
        "soniox/stt-rt-v5",
        SonioxOptions(
            language_hints=("de", "en"), language_hints_strict=True, enable_endpoint_detection=True,
            max_endpoint_delay_ms=800, context_general=(("domain", "medicine"),), context_text="A consult.",
            context_terms=("Lasix",),
        ),
    ),
    "groqConfig": ({"temperature": 0.2}, "groq/whisper-large-v3", GroqOptions(temperature=0.2)),
}  # fmt: skip


@pytest.mark.parametrize("block", sorted(_BLOCKS))
def test_a_provider_block_reaches_the_options_as_its_domain_type(block: str) -> None:
    fields, model, expected = _BLOCKS[block]
    for config in _both({"modelId": model, block: fields, "endOfTurnConfidenceThreshold": 0.35}):
        assert options_of(config).vendor == expected
        # The block is for a model of the list, wherever it stands in it.
        config.model_id = ["whisper/tiny.en", model]
        assert options_of(config).vendor == expected


@pytest.mark.parametrize("block", sorted(_BLOCKS))
def test_a_block_for_no_model_of_the_request_is_an_invalid_argument(block: str) -> None:
    fields, _, _ = _BLOCKS[block]
    for model in ("openai/whisper-1", ["whisper/tiny.en", "openai/whisper-1"], None, "inworld/inworld-stt-1"):
        for config in _both({"modelId": model, block: fields}):
            with pytest.raises(InvalidRequest) as refused:
                options_of(config)
            assert refused.value.code == "invalid_argument"
            assert block in refused.value.message


def test_at_most_one_block() -> None:
    fields = {"modelId": ["deepgram/nova-3", "groq/whisper-large-v3"], "deepgramConfig": {}, "groqConfig": {}}
    for config in _both(fields):
        with pytest.raises(InvalidRequest, match="at most one provider block"):
            options_of(config)


def test_inworld_block_is_for_the_references_own_model_and_voxgates_local_ones() -> None:
    block = {"inworldSttV1Config": {"vadThreshold": 0.6}}
    for model in ("inworld/inworld-stt-1", None, "default", "whisper/tiny.en", ["deepgram/nova-3", "whisper/base"]):
        for config in _both({"modelId": model, **block}):
            assert options_of(config).vendor is None  # it configures voxgate's turn detection, no vendor
    for config in _both({"modelId": "deepgram/nova-3", **block}):
        with pytest.raises(InvalidRequest, match="inworldSttV1Config is for inworld models"):
            options_of(config)


def test_turn_fields_map_onto_the_turn_policy() -> None:
    cfg = StreamTranscribeConfig.model_validate(
        {"endOfTurnConfidenceThreshold": 0.3, "turnDetection": {"threshold": 0.9, "maxSilenceMs": 900},
         "inworldSttV1Config": {"minEndOfTurnSilenceWhenConfident": 150, "vadThreshold": 0.4, "maxTurnSilence": 2500}}
    )  # fmt: skip
    policy = turn_policy(cfg)
    assert policy == TurnPolicy(
        mode=TurnMode.SEMANTIC, threshold=0.3, pause_ms=150, vad_threshold=0.4, max_silence_ms=2500
    )
    assert session_config(cfg).turn == policy
    # No reference field: voxgate's turnDetection as it is.
    plain = StreamTranscribeConfig.model_validate({"turnDetection": {"threshold": 0.9}})
    assert turn_policy(plain) == TurnPolicy(threshold=0.9)


def test_assemblyai_turn_silences_shape_voxgates_turns() -> None:
    # voxgate decides a stream's turns whatever engine serves it; the vendor's VAD threshold goes to the vendor.
    cfg = StreamTranscribeConfig.model_validate(
        {"modelId": "assemblyai/u3-rt-pro", "endOfTurnConfidenceThreshold": 0.4,
         "assemblyaiConfig": {"minEndOfTurnSilenceWhenConfident": 160, "maxTurnSilence": 1200, "vadThreshold": 0.3}}
    )  # fmt: skip
    assert turn_policy(cfg) == TurnPolicy(threshold=0.4, pause_ms=160, max_silence_ms=1200)
    assert options_of(cfg).vendor == AssemblyAIOptions(vad_threshold=0.3)


def test_vad_threshold_zero_means_manual_turns() -> None:
    cfg = StreamTranscribeConfig.model_validate({"inworldSttV1Config": {"vadThreshold": 0}})
    policy = turn_policy(cfg)
    assert policy.mode is TurnMode.MANUAL
    assert policy.vad_threshold == TurnPolicy().vad_threshold  # speech events still come from the VAD


def test_turn_field_bounds() -> None:
    for fields in (
        {"endOfTurnConfidenceThreshold": 1.5},
        {"inworldSttV1Config": {"vadThreshold": -0.1}},
        {"inworldSttV1Config": {"maxTurnSilence": 50}},
        {"inactivityTimeoutSeconds": 0},
        {"voiceProfileConfig": {"topN": 0}},
        {"voiceProfileConfig": {"topN": 21}},
        {"sonioxConfig": {"maxEndpointDelayMs": 100}},
        {"groqConfig": {"temperature": 2}},
    ):
        with pytest.raises(ProtocolViolation):
            parse_client_message('{"transcribeConfig": ' + json.dumps(fields) + "}")


def test_inactivity_timeout_is_bounded_by_the_servers() -> None:
    assert inactivity_timeout(StreamTranscribeConfig(), 30.0) == 30.0
    assert inactivity_timeout(StreamTranscribeConfig.model_validate({"inactivityTimeoutSeconds": 5}), 30.0) == 5.0
    assert inactivity_timeout(StreamTranscribeConfig.model_validate({"inactivityTimeoutSeconds": 600}), 30.0) == 30.0


def test_the_references_top_level_diarization_switch() -> None:
    for config in _both({"enableSpeakerDiarization": True}):
        assert diarization(config) == DiarizationOptions()
    for config in _both({"enableSpeakerDiarization": True, "diarizationConfig": {"maxSpeakerCount": 3}}):
        assert diarization(config) == DiarizationOptions(max_speakers=3)
    for config in _both({"enableSpeakerDiarization": False}):
        assert diarization(config) is None
    with pytest.raises(ValueError, match="cannot be combined"):
        TranscribeConfig.model_validate({"enableSpeakerDiarization": True, "enableSeparateRecognitionPerChannel": True})


def test_audio_encoding_unspecified() -> None:
    rest, stream = _both({"audioEncoding": "AUDIO_ENCODING_UNSPECIFIED"})
    assert rest.audio_encoding is AudioEncoding.AUTO_DETECT  # a file: its header says what it is
    assert stream.audio_encoding is StreamEncoding.LINEAR16  # a stream: the reference streams LINEAR16 only
