"""A job survives its server being killed: ``voxgate serve`` as a real process, SIGKILLed mid-job, started again on
the same home directory; the job is claimed again when its lease runs out and completes, once."""

from __future__ import annotations

import base64
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.jobs.longaudio import long_wav
from tests.speech import normalise

REPEATS = 16
"""jfk.flac (11 s) this many times over: three minutes of speech, twelve windows of 15 s."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def serve(home: Path, log: Path) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``voxgate serve`` in a process of its own, until it answers ``/healthz``."""
    port = _free_port()
    env = {
        **os.environ,
        "VOXGATE_HOME": str(home),
        "VOXGATE_DEFAULT_MODEL": "whisper/tiny.en",
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
    url = f"http://127.0.0.1:{port}"
    try:
        guard = time.monotonic() + 120
        while True:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < guard, "the server did not start"
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield process, url
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=60)


def poll(url: str, name: str) -> dict[str, Any]:
    response = httpx.get(f"{url}/lro/v1alpha/{name}")
    assert response.status_code == 200, response.text
    op: dict[str, Any] = response.json()
    return op


def test_a_job_killed_mid_run_completes_once_after_a_restart(tmp_path: Path) -> None:
    audio = long_wav(REPEATS)
    home, log = tmp_path / "home", tmp_path / "server.log"
    body = {
        "transcribeConfig": {"modelId": "whisper/tiny.en"},
        "audioData": {"content": base64.b64encode(audio).decode()},
    }

    with serve(home, log) as (process, url):
        name = httpx.post(f"{url}/stt/v1/transcribe:async", json=body, timeout=60).json()["name"]
        guard = time.monotonic() + 600
        while (op := poll(url, name))["metadata"]["progressPercent"] == 0:  # wait until it is under way
            assert not op["done"]
            assert time.monotonic() < guard
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        process.wait()
    killed_at = op["metadata"]["progressPercent"]
    assert 0 < killed_at < 100
    assert op["metadata"]["state"] == "RUNNING"

    with serve(home, log) as (process, url):
        guard = time.monotonic() + 600
        while not (op := poll(url, name))["done"]:
            assert time.monotonic() < guard
            time.sleep(0.1)
        listed = httpx.get(f"{url}/lro/v1alpha/operations").json()["operations"]
        document = httpx.get(op["response"]["resultUri"]).json()

    assert op["metadata"]["state"] == "SUCCEEDED"
    assert op["metadata"]["attempts"] == 2  # the killed run, and the one that finished
    assert [o["name"] for o in listed] == [name]
    assert normalise(document["transcript"]).count("fellow americans") >= REPEATS - 2
    assert document["usage"]["transcribedAudioMs"] > REPEATS * 10_000
    text = log.read_text()
    assert text.count(f"job {name.split('/')[1]}: attempt 1") == 1
    assert text.count(f"job {name.split('/')[1]}: attempt 2") == 1
    # Work redone: the window in flight, not the windows finished before the kill.
    kept = re.search(rf"job {name.split('/')[1]}: (\d+) window\(s\) kept from an earlier attempt", text)
    assert kept is not None, text
    assert int(kept.group(1)) >= 1
    assert not list((home / "jobs" / "audio").iterdir())  # the audio went with the finished job
