"""Fuzzing the server as a hostile client would: generated JSON bodies, multipart forms, OpenAI forms and WebSocket
frames. Every answer must be a success or a documented error (a code from :mod:`voxgate.errors` and its status),
never an internal error, and the server must answer ``/healthz`` after each. Deterministic (derandomized)."""

from __future__ import annotations

import base64
import inspect
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.websockets import WebSocketDisconnect

from voxgate import errors

FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    max_examples=200,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)

CODES = {
    cls.code
    for _, cls in inspect.getmembers(errors, inspect.isclass)
    if issubclass(cls, errors.VoxgateError) and cls is not errors.VoxgateError
} | {"not_found", "method_not_allowed", "http_error"}
"""Every documented error code (the routes' own, and Starlette's for unknown paths and methods)."""

SILENCE = base64.b64encode(bytes(3200)).decode()  # 0.1 s of 16 kHz LINEAR16: valid, cheap to transcribe

scalars = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.text(max_size=30)
json_values = st.recursive(
    scalars | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)

CONFIG_KEYS = [
    "modelId", "audioEncoding", "sampleRateHertz", "language", "includeWordTimestamps", "prompts",
    "numberOfChannels", "voiceProfileConfig", "diarizationConfig", "turnDetection", "enablePartials",
    "enableSeparateRecognitionPerChannel", "task", "temperature",
]  # fmt: skip
MODEL_IDS = ["whisper/tiny.en", "whisper/" + "x" * 600, "whisper//etc", "deepgram/nova-3", "a/b/c", "", "inworld/x"]
ENCODINGS = ["LINEAR16", "MULAW", "AUTO_DETECT", "OGG_OPUS", "nonsense", ""]


@st.composite
def configs(draw: st.DrawFn) -> dict[str, Any]:
    config: dict[str, Any] = draw(st.dictionaries(st.sampled_from(CONFIG_KEYS), json_values, max_size=5))
    if draw(st.booleans()):
        config["modelId"] = draw(st.sampled_from(MODEL_IDS))
    if draw(st.booleans()):
        config["audioEncoding"] = draw(st.sampled_from(ENCODINGS))
        config["sampleRateHertz"] = draw(st.sampled_from([16000, 8000, 0, -1, 10**9]))
    return config


contents = st.sampled_from([SILENCE, "", "!!!", "AAAA" * 3, base64.b64encode(b"RIFF" + bytes(40)).decode()])


STATUS = {
    cls.code: cls.http_status
    for _, cls in inspect.getmembers(errors, inspect.isclass)
    if issubclass(cls, errors.VoxgateError) and cls is not errors.VoxgateError
}


def check_answer(response: Any) -> None:
    """A success, or a documented error with its own status (a 5xx only where documented: a cloud model without its
    key is ``model_unavailable``, 503), never ``internal``."""
    if response.status_code < 400:
        return
    error = response.json()["error"]
    assert error["code"] in CODES, (response.status_code, error)
    assert error["code"] != "internal", (response.status_code, error)
    assert response.status_code == STATUS.get(error["code"], response.status_code), (response.status_code, error)
    assert "Traceback" not in error["message"]


@pytest.fixture(scope="module")
def http(client: TestClient) -> TestClient:
    return client


def alive(client: TestClient) -> None:
    assert client.get("/healthz").status_code == 200


@FUZZ
@given(configs(), contents, json_values)
def test_json_bodies(http: TestClient, config: dict[str, Any], content: str, extra: Any) -> None:
    body: dict[str, Any] = {"transcribeConfig": config, "audioData": {"content": content}}
    if extra is not None:
        body["extra"] = extra
    check_answer(http.post("/stt/v1/transcribe", json=body))
    alive(http)


@FUZZ
@given(json_values)
def test_any_json_at_all(http: TestClient, body: Any) -> None:
    check_answer(
        http.post("/stt/v1/transcribe", content=json.dumps(body), headers={"content-type": "application/json"})
    )
    alive(http)


@FUZZ
@given(st.binary(max_size=400), st.dictionaries(st.sampled_from(CONFIG_KEYS), st.text(max_size=20), max_size=4))
def test_multipart_forms(http: TestClient, audio: bytes, fields: dict[str, str]) -> None:
    check_answer(http.post("/stt/v1/transcribe", files={"file": ("x", audio)}, data=fields))
    form = {"model": "whisper-1", **{k.lower(): v for k, v in fields.items()}}
    check_answer(http.post("/v1/audio/transcriptions", files={"file": ("x", audio)}, data=form))
    alive(http)


FRAMES = st.one_of(
    st.builds(lambda c: json.dumps({"transcribeConfig": c}), configs()),
    st.builds(lambda c: json.dumps({"audioChunk": {"content": c}}), contents),
    st.sampled_from(['{"endTurn": {}}', '{"closeStream": {}}', "{}", "null", "[]", "not json", "{" * 500]),
    st.builds(json.dumps, json_values),
    st.binary(max_size=300),
)


@FUZZ
@given(st.lists(FRAMES, min_size=1, max_size=6))
def test_stream_frames(http: TestClient, frames: list[str | bytes]) -> None:
    """Any sequence of frames: every error the server sends has a documented code, and the stream ends with a
    normal or policy close, never an internal error."""
    messages: list[dict[str, Any]] = []
    with http.websocket_connect("/stt/v1/transcribe:streamBidirectional") as ws:
        try:
            for frame in frames:
                if isinstance(frame, bytes):
                    ws.send_bytes(frame)
                else:
                    ws.send_text(frame)
            ws.send_text('{"closeStream": {}}')
            while True:
                messages.append(ws.receive_json())
        except WebSocketDisconnect as closed:
            code = closed.code
    for message in messages:
        if "error" in message:
            assert message["error"]["code"] in CODES, message
            assert message["error"]["code"] != "internal", message
    assert code in (1000, 1008, 1009, 1011), code
    if code == 1011:  # only a model that cannot be opened here (a cloud model without its key)
        assert any(m.get("error", {}).get("code") == "model_unavailable" for m in messages), messages
    alive(http)
