"""The runner's life cycle around real jobs (the app's runner, the real transcription): a cancelled job's work stops,
and a server shutting down hands its running job back to the queue."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from tests.jobs.longaudio import long_wav
from voxgate.jobs.sqlite import SqliteJobStore
from voxgate.jobs.store import JobState
from voxgate.server.app import create_app
from voxgate.service import Service

SUBMIT = "/stt/v1/transcribe:async"
TINY = "whisper/tiny.en"
REPEATS = 16


@contextmanager
def server(service: Service, home: Path) -> Iterator[TestClient]:
    settings = service.settings.model_copy(update={"home": home, "job_window_seconds": 15.0, "job_lease_seconds": 3.0})
    with TestClient(create_app(settings, service=service), base_url="http://127.0.0.1") as c:
        yield c


def submit(client: TestClient, audio: bytes) -> str:
    body = {"transcribeConfig": {"modelId": TINY}, "audioData": {"content": base64.b64encode(audio).decode()}}
    response = client.post(SUBMIT, json=body)
    assert response.status_code == 200, response.text
    name: str = response.json()["name"]
    return name


def until(client: TestClient, name: str, done: bool) -> dict[str, Any]:
    """Poll until the job is under way (``done`` False: running with some progress) or done."""
    guard = time.monotonic() + 600
    while time.monotonic() < guard:
        op: dict[str, Any] = client.get(f"/lro/v1alpha/{name}").json()
        if op["done"] if done else op["done"] or op["metadata"]["progressPercent"] > 0:
            return op
        time.sleep(0.05)
    raise AssertionError(f"{name} never got there")


def transcribed_seconds(service: Service) -> float:
    return service.metrics.registry.get_sample_value("voxgate_audio_seconds_total", {"model": TINY}) or 0.0


def test_a_cancelled_running_job_stops_and_keeps_its_state(service: Service, tmp_path: Path, data: Path) -> None:
    with server(service, tmp_path) as client:
        before = transcribed_seconds(service)
        name = submit(client, long_wav(REPEATS))
        running = until(client, name, done=False)
        assert running["metadata"]["state"] == "RUNNING"
        cancelled = client.post(f"/lro/v1alpha/{name}:cancel").json()
        assert cancelled["metadata"]["state"] == "CANCELLED"
        short = submit(client, (data / "en" / "spk1_snt1.wav").read_bytes())
        assert until(client, short, done=True)["metadata"]["state"] == "SUCCEEDED"  # the worker is free again
        final = client.get(f"/lro/v1alpha/{name}").json()
    assert final["metadata"]["state"] == "CANCELLED"
    assert final["error"]["code"] == "cancelled"
    assert "response" not in final
    # The long job's windows stopped: far less than its three minutes were transcribed (plus the short clip).
    assert transcribed_seconds(service) - before < REPEATS * 11 * 0.9


def test_shutting_down_hands_the_running_job_back(service: Service, tmp_path: Path) -> None:
    with server(service, tmp_path) as client:
        name = submit(client, long_wav(REPEATS))
        until(client, name, done=False)
    job_id = name.split("/")[1]
    store = SqliteJobStore(tmp_path / "jobs" / "jobs.sqlite3")
    back = store.get(job_id)
    store.close()
    assert back is not None
    assert back.state is JobState.QUEUED
    assert back.attempts == 0  # a shutdown is not a failed attempt
    with server(service, tmp_path) as client:
        op = until(client, name, done=True)
    assert op["metadata"]["state"] == "SUCCEEDED"
    assert op["metadata"]["attempts"] == 1
