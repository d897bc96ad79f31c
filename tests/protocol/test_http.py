"""The REST wire schemas: language tags, request parsing (camelCase, defaults, limits) and the response shape."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from voxgate.protocol.http import (
    AudioEncoding,
    TranscribeConfig,
    TranscribeRequest,
    TranscribeResponse,
    VoiceProfileOut,
    features_to_wire,
    normalize_language,
)
from voxgate.types import (
    LabelScore,
    LanguageScore,
    Segment,
    Transcript,
    VoiceFeatures,
    VoiceProfile,
    Word,
)


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("en", "en"),
        ("en-US", "en"),
        ("EN-us", "en"),
        ("pt_BR", "pt"),
        ("zh-Hant-TW", "zh"),
        ("de", "de"),
        (" fr-CA ", "fr"),
        ("auto", None),
        ("AUTO", None),
        ("und", None),
        ("", None),
        ("   ", None),
        (None, None),
        ("iw", "he"),  # the withdrawn ISO code for Hebrew
        ("iw-IL", "he"),
        ("jv", "jw"),  # Whisper spells Javanese "jw"
        ("nb-NO", "no"),  # Whisper has one Norwegian
        ("haw", "haw"),
    ],
)
def test_normalize_language(tag: str | None, expected: str | None) -> None:
    assert normalize_language(tag) == expected


def test_request_parses_the_reference_body() -> None:
    body = {
        "transcribeConfig": {
            "modelId": "groq/whisper-large-v3",
            "audioEncoding": "LINEAR16",
            "language": "en-US",
            "sampleRateHertz": 16000,
            "numberOfChannels": 1,
            "includeWordTimestamps": True,
            "prompts": ["delivery", "shipping", "order status"],
            "voiceProfileConfig": {"enableVoiceProfile": True, "topN": 3},
            "someFutureField": 1,
        },
        "audioData": {"content": "AAAA"},
    }
    req = TranscribeRequest.model_validate(body)
    c = req.transcribe_config
    assert c.model_id == "groq/whisper-large-v3"
    assert c.audio_encoding is AudioEncoding.LINEAR16
    assert c.sample_rate_hertz == 16000
    assert c.prompts == ["delivery", "shipping", "order status"]
    assert c.voice_profile_config is not None
    assert c.voice_profile_config.enable_voice_profile is True
    assert c.voice_profile_config.top_n == 3
    assert req.audio_data.content == "AAAA"


def test_config_defaults() -> None:
    c = TranscribeConfig()
    assert c.model_id is None
    assert c.audio_encoding is AudioEncoding.AUTO_DETECT
    assert c.sample_rate_hertz is None
    assert c.number_of_channels == 1
    assert c.include_word_timestamps is True
    assert c.prompts == []
    assert TranscribeRequest.model_validate({"audioData": {"content": ""}}).transcribe_config == c


def test_encoding_is_case_insensitive() -> None:
    assert TranscribeConfig.model_validate({"audioEncoding": "mulaw"}).audio_encoding is AudioEncoding.MULAW


@pytest.mark.parametrize(
    "config",
    [
        {"audioEncoding": "SPEEX"},
        {"numberOfChannels": 0},
        {"numberOfChannels": 9},
        {"prompts": ["x"] * 201},
        {"voiceProfileConfig": {"topN": 0}},
        {"sampleRateHertz": "fast"},
    ],
)
def test_config_refuses(config: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        TranscribeConfig.model_validate(config)


def test_request_needs_audio_data() -> None:
    with pytest.raises(ValidationError):
        TranscribeRequest.model_validate({"transcribeConfig": {}})


def test_response_shape() -> None:
    t = Transcript(
        segments=(
            Segment("Hey, I just", 0.0, 0.9, (Word("Hey,", 0.0, 0.24, 0.99), Word("I", 0.3, 0.4, 0.9)), "en"),
            Segment("checked.", 1.0, 1.6, (Word("checked.", 1.0, 1.6, 0.8),), "en"),
        ),
        duration=3.5204,
        language="en",
        language_probability=0.97,
        language_candidates=(LanguageScore("en", 0.97),),
        model_id="whisper/base",
    )
    out = TranscribeResponse.of(t, model_id="inworld/inworld-stt-1", words=True).model_dump(by_alias=True)
    assert out["transcription"]["transcript"] == "Hey, I just checked."
    assert out["transcription"]["isFinal"] is True
    # Words are bare, as in the reference's example ("Hey" for "Hey,"); punctuation stays in the transcript.
    assert out["transcription"]["wordTimestamps"][-1]["word"] == "checked"
    assert out["transcription"]["wordTimestamps"][0] == {
        "word": "Hey",
        "startTimeSeconds": 0.0,
        "endTimeSeconds": 0.24,
        "confidence": 0.99,
    }
    assert len(out["transcription"]["wordTimestamps"]) == 3
    assert out["transcription"]["language"] == "en"
    assert out["transcription"]["languageProbability"] == 0.97
    assert out["usage"] == {"transcribedAudioMs": 3520, "modelId": "inworld/inworld-stt-1"}
    assert out["languageCandidates"] == [{"code": "en", "probability": 0.97}]
    assert [s["text"] for s in out["segments"]] == ["Hey, I just", "checked."]

    bare = TranscribeResponse.of(t, model_id="whisper/base", words=False).model_dump(by_alias=True)
    assert bare["transcription"]["wordTimestamps"] == []
    assert all(s["wordTimestamps"] == [] for s in bare["segments"])


def test_features_keep_their_published_camel_case_keys_rounded() -> None:
    wire = features_to_wire(
        VoiceFeatures(duration_s=2.34567, f0_median_hz=118.2649, jitter_local=0.012345678, word_count=6,
                      mean_pause_s=None, speaking_rate_wpm=151.26)
    )  # fmt: skip
    assert list(wire) == [
        "durationSec", "speechSec", "voicedSec", "voicedRatio", "f0MedianHz", "f0P10Hz", "f0P90Hz",
        "f0RangeSemitones", "f0StdSemitones", "loudnessDbfs", "loudnessRangeDb", "snrDb", "hnrDb", "jitterLocal",
        "shimmerLocal", "clippedRatio", "wordCount", "speakingRateWpm", "articulationRateWpm", "pauseRatio",
        "meanPauseSec",
    ]  # fmt: skip
    assert wire["durationSec"] == 2.346
    assert wire["f0MedianHz"] == 118.3
    assert wire["jitterLocal"] == 0.0123
    assert wire["speakingRateWpm"] == 151.3
    assert wire["wordCount"] == 6
    assert isinstance(wire["wordCount"], int)
    assert wire["meanPauseSec"] is None
    assert wire["f0P10Hz"] is None


def test_voice_profile_dimensions_are_published_in_camel_case() -> None:
    one = (LabelScore("a", 0.6), LabelScore("b", 0.3), LabelScore("c", 0.1))
    profile = VoiceProfile(one, one, one, one, one, one, one, VoiceFeatures(duration_s=1.0), speech_seconds=1.2345)
    body = VoiceProfileOut.of(profile, top_n=2).model_dump(by_alias=True)
    assert list(body) == [
        "language",
        "age",
        "gender",
        "emotion",
        "pitch",
        "vocalStyle",
        "accent",
        "features",
        "speechSeconds",
    ]
    assert body["vocalStyle"] == [{"label": "a", "confidence": 0.6}, {"label": "b", "confidence": 0.3}]
    assert body["features"]["durationSec"] == 1.0
    assert body["speechSeconds"] == 1.23
