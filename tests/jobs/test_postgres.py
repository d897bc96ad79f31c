"""What only the PostgreSQL store does: several stores (servers) on one database, audio in chunks in the database,
the schema made once by servers starting together. The Protocol's promises are in test_store.py."""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from tests.jobs.longaudio import long_wav
from tests.speech import normalise
from voxgate.config import Settings
from voxgate.jobs.backends import open_store
from voxgate.jobs.postgres import PostgresJobStore
from voxgate.jobs.store import JobState, NewJob
from voxgate.server.app import create_app
from voxgate.service import Service

T0 = 1_000_000.0
DAY = 86400.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def new() -> NewJob:
    return NewJob(id=uuid.uuid4().hex, owner="", request=b"{}")


def test_the_setting_names_it(postgres_url: str, tmp_path: Path) -> None:
    store = open_store(postgres_url, tmp_path)
    assert isinstance(store, PostgresJobStore)
    store.close()


def test_an_unreachable_database_is_named_without_its_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("voxgate.jobs.postgres.ConnectionPool.open", _never_opens)
    url = f"postgresql://voxgate:hunter2@127.0.0.1:{_free_port()}/jobs"
    with pytest.raises(ConnectionError, match=r"127\.0\.0\.1:\d+/jobs") as raised:
        PostgresJobStore(url)
    assert "hunter2" not in str(raised.value)


def _never_opens(self: object, wait: bool = False, timeout: float = 30.0) -> None:
    from psycopg_pool import PoolTimeout

    raise PoolTimeout("pool initialization incomplete")


def test_servers_starting_together_make_the_schema_once(postgres_url: str) -> None:
    stores: list[PostgresJobStore] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            stores.append(PostgresJobStore(postgres_url, max_connections=1))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for s in stores:
        s.close()


def test_audio_longer_than_a_chunk_comes_back_whole_and_goes_with_the_job(postgres_url: str, tmp_path: Path) -> None:
    store = PostgresJobStore(postgres_url, spool_dir=tmp_path)
    audio = os.urandom(2 * (1 << 20) + 12345)  # three chunks
    job = store.submit(new(), audio, max_queued=10, now=T0)
    assert job.audio_bytes == len(audio)
    with store.audio(job.id) as path:
        assert path.read_bytes() == audio
    assert list(tmp_path.iterdir()) == []  # the spooled copy is gone after the with
    empty = store.submit(new(), b"", max_queued=10, now=T0)
    with store.audio(empty.id) as path:
        assert path.read_bytes() == b""
    store.close()


def test_stores_on_two_machines_share_the_queue(postgres_url: str) -> None:
    """Two stores (two servers' pools) on one database: a job submitted through one is claimed, run and finished
    through the other; each of many jobs is claimed once across both; the bound counts both servers' jobs."""
    a, b = PostgresJobStore(postgres_url), PostgresJobStore(postgres_url)
    job = a.submit(new(), b"x", max_queued=100, now=T0)
    claimed = b.claim("on-b", lease_seconds=30, max_attempts=3, retention=DAY, now=T0)
    assert claimed is not None
    assert claimed.id == job.id
    assert b.finish(job.id, "on-b", 1, result=b"done", retention=DAY, now=T0) is not None
    assert a.result(job.id) == b"done"

    ids = {(a if i % 2 else b).submit(new(), b"x", max_queued=100, now=T0 + i).id for i in range(30)}
    taken: list[str] = []
    lock = threading.Lock()

    def grab(store: PostgresJobStore, worker: str) -> None:
        while (j := store.claim(worker, lease_seconds=30, max_attempts=3, retention=DAY, now=T0 + 100)) is not None:
            with lock:
                taken.append(j.id)

    threads = [threading.Thread(target=grab, args=(s, f"{n}{i}")) for i in range(3) for n, s in (("a", a), ("b", b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(taken) == sorted(ids)
    assert a.counts().running == 30
    assert b.get(taken[0]).state is JobState.RUNNING  # type: ignore[union-attr]
    a.close()
    b.close()


# -- two servers on one store: the app's runners, real transcription ------------------------------------------------

SUBMIT = "/stt/v1/transcribe:async"
TINY = "whisper/tiny.en"


def _settings(service: Service, home: Path, url: str, workers: int) -> Settings:
    return service.settings.model_copy(
        update={
            "home": home,
            "job_store": url,
            "job_workers": workers,
            "job_window_seconds": 15.0,
            "job_lease_seconds": 3.0,
            "job_result_secret": SecretStr("shared by every server"),
        }
    )


def _submit(client: TestClient | str, audio: bytes) -> str:
    body = {"transcribeConfig": {"modelId": TINY}, "audioData": {"content": base64.b64encode(audio).decode()}}
    if isinstance(client, str):
        response = httpx.post(f"{client}{SUBMIT}", json=body, timeout=60)
    else:
        response = client.post(SUBMIT, json=body)
    assert response.status_code == 200, response.text
    name: str = response.json()["name"]
    return name


def _poll(client: TestClient | str, name: str) -> dict[str, Any]:
    if isinstance(client, str):
        response = httpx.get(f"{client}/lro/v1alpha/{name}", timeout=30)
    else:
        response = client.get(f"/lro/v1alpha/{name}")
    assert response.status_code == 200, response.text
    op: dict[str, Any] = response.json()
    return op


def _until(client: TestClient | str, name: str, *, running: bool = False) -> dict[str, Any]:
    guard = time.monotonic() + 300
    while time.monotonic() < guard:
        op = _poll(client, name)
        if op["done"] or (running and op["metadata"]["progressPercent"] > 0):
            return op
        time.sleep(0.05)
    raise AssertionError(f"{name} never got there")


def test_a_job_submitted_to_one_server_is_run_by_another(
    service: Service, postgres_url: str, tmp_path: Path, data: Path
) -> None:
    """Server A runs no jobs (``job_workers=0``); B, on another home directory, shares only the database. A job
    submitted to A is run by B, and A answers its operation and its result."""
    front = create_app(_settings(service, tmp_path / "a", postgres_url, workers=0), service=service)
    back = create_app(_settings(service, tmp_path / "b", postgres_url, workers=1), service=service)
    with TestClient(front, base_url="http://127.0.0.1") as a, TestClient(back, base_url="http://127.0.0.1") as b:
        name = _submit(a, (data / "en" / "jfk.flac").read_bytes())
        op = _until(a, name)
        assert op["metadata"]["state"] == "SUCCEEDED"
        document = a.get(op["response"]["resultUri"]).json()
        assert b.get(f"/lro/v1alpha/{name}").json()["metadata"]["state"] == "SUCCEEDED"
    assert "fellow americans" in normalise(document["transcript"])


def test_a_killed_servers_job_is_taken_over_and_completes_once(
    service: Service, postgres_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``voxgate serve`` in its own process runs a job from the shared store and is SIGKILLed mid-job; a server on
    another home directory takes the job over when the lease runs out, keeps the windows already done, and the job
    completes once (two attempts; the dead worker's claim can write nothing)."""
    repeats = 6  # 66 s of speech, five windows of 15 s
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "killed.log"
    env = {
        **os.environ,
        "VOXGATE_HOME": str(tmp_path / "killed"),
        "VOXGATE_JOB_STORE": postgres_url,
        "VOXGATE_DEFAULT_MODEL": TINY,
        "VOXGATE_PRELOAD": "[]",
        "VOXGATE_CPU_THREADS": "2",
        "VOXGATE_CONSOLE": "false",
        "VOXGATE_JOB_LEASE_SECONDS": "3",
        "VOXGATE_JOB_WINDOW_SECONDS": "15",
    }
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "voxgate", "serve", "--port", str(port)], env=env, stdout=out, stderr=out
        )
    try:
        guard = time.monotonic() + 120
        while True:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < guard, "the server did not start"
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            time.sleep(0.1)
        name = _submit(url, long_wav(repeats))
        op = _until(url, name, running=True)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
    assert op["metadata"]["state"] == "RUNNING"
    assert 0 < op["metadata"]["progressPercent"] < 100

    job_id = name.split("/")[1]
    caplog.set_level(logging.INFO, logger="voxgate.jobs.runner")
    other = create_app(_settings(service, tmp_path / "other", postgres_url, workers=1), service=service)
    with TestClient(other, base_url="http://127.0.0.1") as client:
        done = _until(client, name)
        document = client.get(done["response"]["resultUri"]).json()
    assert done["metadata"]["state"] == "SUCCEEDED"
    assert done["metadata"]["attempts"] == 2  # the killed run, and the one that finished
    assert normalise(document["transcript"]).count("fellow americans") >= repeats - 1
    kept = re.search(rf"job {job_id}: (\d+) window\(s\) kept from an earlier attempt", caplog.text)
    assert kept is not None, caplog.text
    assert int(kept.group(1)) >= 1  # the windows the killed server finished were not redone
    store = PostgresJobStore(postgres_url)
    try:
        result = store.result(job_id)
        # The killed server's claim (attempt 1) can write nothing now, whatever its worker's name.
        killed = store.finish(job_id, "any", 1, result=b"stale", retention=DAY, now=time.time())
        assert killed is None
        assert store.result(job_id) == result
        assert b"fellow" in (result or b"")
    finally:
        store.close()
