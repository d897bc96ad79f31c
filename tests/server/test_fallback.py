"""Fallback along a list of model ids: a missing key or a failing provider hands the work to the next model."""

from __future__ import annotations

import base64
from pathlib import Path

from fastapi.testclient import TestClient

from tests.server.wsutil import CLOSE_STREAM, TINY, config_frame, drain, open_stream, pcm16, send_pcm
from tests.speech import reference, wer
from voxgate.audio.decode import decode

URL = "/stt/v1/transcribe"


def _body(path: Path, model_id: object) -> dict[str, object]:
    return {
        "transcribeConfig": {"modelId": model_id, "language": "en"},
        "audioData": {"content": base64.b64encode(path.read_bytes()).decode()},
    }


def test_rest_falls_back_when_a_provider_has_no_key(client: TestClient, data: Path) -> None:
    response = client.post(URL, json=_body(data / "en" / "spk1_snt1.wav", ["deepgram/nova-3", TINY]))
    assert response.status_code == 200, response.text
    out = response.json()
    assert out["usage"]["modelId"] == TINY  # the model that did the work
    assert any("deepgram/nova-3" in w and "VOXGATE_DEEPGRAM_API_KEY" in w for w in out["warnings"]), out["warnings"]
    assert wer(reference(data, "en/spk1_snt1.wav"), out["transcription"]["transcript"]) <= 0.2


def test_a_provider_block_applies_to_its_model_only(client: TestClient, data: Path) -> None:
    # deepgramConfig is for the list's Deepgram model; the local model it falls back to goes on without it.
    body = _body(data / "en" / "spk1_snt1.wav", ["deepgram/nova-3", TINY])
    block = {"keyterms": ["dog"], "smartFormat": False}
    config = {"modelId": ["deepgram/nova-3", TINY], "language": "en", "deepgramConfig": block}
    response = client.post(URL, json={**body, "transcribeConfig": config})
    assert response.status_code == 200, response.text
    out = response.json()
    assert out["usage"]["modelId"] == TINY
    assert wer(reference(data, "en/spk1_snt1.wav"), out["transcription"]["transcript"]) <= 0.2


def test_rest_without_a_usable_model_names_the_last_error(client: TestClient, data: Path) -> None:
    response = client.post(
        URL, json=_body(data / "en" / "spk1_snt1.wav", ["openai/whisper-1", "groq/whisper-large-v3"])
    )
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "model_unavailable"
    assert "VOXGATE_GROQ_API_KEY" in error["message"]


def test_models_listing_says_which_providers_are_configured(client: TestClient) -> None:
    models = {m["id"]: m for m in client.get("/stt/v1/models").json()["models"]}
    assert models["deepgram/nova-3"]["remote"] is True
    assert models["deepgram/nova-3"]["configured"] is False
    assert models["openai/whisper-1"]["configured"] is False
    assert models["whisper/base"]["configured"] is True
    assert models["vosk/ko"]["remote"] is False


async def test_stream_opens_on_the_first_model_that_can_serve(live_server, data: Path) -> None:
    audio = decode(data / "en" / "spk1_snt2.wav")
    async with open_stream(live_server) as ws:
        await ws.send(
            config_frame(model_id=None, modelId=["assemblyai/universal-2", TINY], turnDetection={"mode": "manual"})
        )
        await send_pcm(ws, pcm16(audio))
        await ws.send(CLOSE_STREAM)
        got = await drain(ws)
    assert got.close_code == 1000
    (final,) = got.finals
    assert wer(reference(data, "en/spk1_snt2.wav"), final["transcript"]) <= 0.2
