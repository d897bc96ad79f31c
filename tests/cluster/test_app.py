"""voxgate on a Ray cluster started by the test (``voxgate serve --ray``: a Ray head on this machine, an ingress replica
and two replicas of ``whisper/tiny.en``), against the single process: REST, the OpenAI route, a WebSocket stream and an
async job through Ray's HTTP proxy give the same results; a model replica SIGKILLed during a file request and during a
stream costs neither its result.

Ray is an extra: without it these tests skip, except where ``VOXGATE_REQUIRE_RAY=1`` (CI) says it must be there.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.conftest import LiveServer
from tests.jobs.longaudio import long_wav
from tests.server.test_example_client import CLIP, EXAMPLE, example_script
from tests.server.test_example_client import run as run_example
from tests.speech import normalise, reference, wer
from voxgate.audio.decode import decode
from voxgate.audio.pcm import encode_wav
from voxgate.client import ResultMessage, StreamResult, stream_file
from voxgate.types import SAMPLE_RATE

TINY = "whisper/tiny.en"
REPLICA = "ray::ServeReplica:voxgate:model-whisper-tiny-en"

if importlib.util.find_spec("ray") is None:
    if os.environ.get("VOXGATE_REQUIRE_RAY") == "1":
        raise RuntimeError("VOXGATE_REQUIRE_RAY=1 but Ray is not installed (pip install -e '.[dev]')")
    pytestmark = pytest.mark.skip(reason="Ray is not installed (pip install 'voxgate[ray]')")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Cluster:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def replicas(self) -> list[int]:
        """The model replicas' process ids (Ray names its worker processes after what they run)."""
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                except OSError:
                    continue
                if title.startswith(REPLICA) and self._ours(int(entry.name)):
                    found.append(int(entry.name))
        return sorted(found)

    def _ours(self, pid: int) -> bool:
        """Whether ``pid`` descends from the cluster this test started (never touch anyone else's Ray)."""
        while pid > 1:
            if pid == self.process.pid:
                return True
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                return False
            pid = int(stat.rsplit(")", 1)[1].split()[1])
        return False

    def wait_replicas(self, count: int) -> list[int]:
        guard = time.monotonic() + 180
        while len(pids := self.replicas()) != count:
            assert time.monotonic() < guard, f"{len(pids)} model replicas, expected {count}"
            time.sleep(0.5)
        return pids

    def metric(self, name: str) -> float:
        """A metric of the tiny model summed over every replica that reports it."""
        text = httpx.get(f"{self.url}/metrics", timeout=30).text
        found = re.findall(rf'^{re.escape(name)}\{{model="{re.escape(TINY)}",replica="[^"]+"\}} (\S+)$', text, re.M)
        return sum(float(v) for v in found)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    tmp = Path(tempfile.mkdtemp(prefix="vxray-"))  # short: Ray's socket paths live under it
    port = _free_port()
    log = tmp / "serve.log"
    env = {
        **os.environ,
        "RAY_TMPDIR": str(tmp),
        "RAY_USAGE_STATS_ENABLED": "0",
        "VOXGATE_HOME": str(tmp / "home"),
        "VOXGATE_DEFAULT_MODEL": TINY,
        "VOXGATE_PRELOAD": "[]",
        "VOXGATE_CPU_THREADS": "2",
        "VOXGATE_CONSOLE": "false",
    }
    command = [sys.executable, "-m", "voxgate", "serve", "--ray", "--ray-model", TINY, "--model-replicas", "2"]
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [*command, "--port", str(port)], env=env, stdout=out, stderr=out, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        guard = time.monotonic() + 240
        while True:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < guard, f"the cluster did not start: {log.read_text()[-4000:]}"
            try:
                if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        cluster = Cluster(url, process, log)
        cluster.wait_replicas(2)
        yield cluster
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # serve.shutdown(), ray.shutdown()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)  # its own session: only what it started
                process.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)


def test_healthz_means_the_same(cluster: Cluster, client: TestClient) -> None:
    through_ray = httpx.get(f"{cluster.url}/healthz", timeout=30).json()
    assert through_ray["status"] == "ok"
    assert through_ray["models_loaded"] == [TINY]  # served through the model deployment
    assert set(through_ray) == set(client.get("/healthz").json())


def test_one_metrics_endpoint_shows_every_replica(cluster: Cluster) -> None:
    """Whichever ingress replica the proxy picks, its /metrics carries every replica's metrics, labelled: the model
    replicas' (their loaded model, their scheduler's queue) beside the ingress's own (the requests it served)."""
    guard = time.monotonic() + 60  # replicas report every 5 s
    while True:
        text = httpx.get(f"{cluster.url}/metrics", timeout=30).text
        replicas = set(re.findall(r'replica="(model-whisper-tiny-en/[^"]+)"', text))
        if len(replicas) >= 2 or time.monotonic() > guard:
            break
        time.sleep(1)
    assert len(replicas) >= 2, text[-3000:]  # both model replicas (and a killed one's until it goes stale)
    for replica in replicas:
        assert re.search(rf'^voxgate_models_loaded\{{replica="{re.escape(replica)}"\}} 1\.0$', text, re.M)
        assert re.search(rf'^voxgate_decodes_queued\{{replica="{re.escape(replica)}"\}} \d', text, re.M)
    assert re.search(r'^voxgate_streams\{replica="ingress/[^"]+"\} ', text, re.M)


def test_rest_and_openai_routes_give_the_single_process_results(
    cluster: Cluster, client: TestClient, data: Path
) -> None:
    clip = (data / "en" / "jfk.flac").read_bytes()
    files = {"file": ("jfk.flac", clip, "audio/flac")}
    form = {"modelId": TINY, "language": "en"}
    alone = client.post("/stt/v1/transcribe", files=files, data=form).json()
    on_ray = httpx.post(f"{cluster.url}/stt/v1/transcribe", files=files, data=form, timeout=120)
    assert on_ray.status_code == 200, on_ray.text
    assert on_ray.json()["transcription"] == alone["transcription"]  # words, times and confidences too

    openai_form = {"model": TINY, "response_format": "verbose_json"}
    alone_openai = client.post("/v1/audio/transcriptions", files=files, data=openai_form).json()
    on_ray_openai = httpx.post(f"{cluster.url}/v1/audio/transcriptions", files=files, data=openai_form, timeout=120)
    assert on_ray_openai.status_code == 200, on_ray_openai.text
    assert on_ray_openai.json()["text"] == alone_openai["text"]
    assert on_ray_openai.json()["segments"] == alone_openai["segments"]


def _stream(url: str, path: Path) -> list[StreamResult]:
    async def run() -> list[StreamResult]:
        # Sent flat out, so turns are cut by the VAD on the audio itself (vad mode), not by when the turn model's
        # answers come back: the same turns on both servers, whatever their timing.
        turns = {"mode": "vad", "silenceMs": 700}
        return [m async for m in stream_file(url, path, realtime=False, model_id=TINY, turn_detection=turns)]

    return asyncio.run(run())


def _finals(messages: list[StreamResult]) -> list[str]:
    results = [m.result.transcription for m in messages if isinstance(m, ResultMessage)]
    return [t.transcript for t in sorted((t for t in results if t.is_final), key=lambda t: t.turn_index)]


def test_a_websocket_stream_gives_the_single_process_finals(
    cluster: Cluster, live_server: LiveServer, data: Path
) -> None:
    clip = data / "en" / "jfk.flac"
    on_ray = _finals(_stream(cluster.url, clip))
    alone = _finals(_stream(live_server.url, clip))
    assert on_ray == alone
    assert "fellow americans" in normalise(" ".join(on_ray))


def test_the_reference_example_client_through_the_proxy(cluster: Cluster, data: Path, tmp_path: Path) -> None:
    """The reference API's published client (``../shared/reference``), unchanged but for its URL, key and audio."""
    if not EXAMPLE.is_file():
        if os.environ.get("VOXGATE_REQUIRE_REFERENCE") == "1":
            raise AssertionError(f"VOXGATE_REQUIRE_REFERENCE=1 but {EXAMPLE} is missing")
        pytest.skip(f"the reference API's example client is not beside the checkout ({EXAMPLE})")
    proxy = SimpleNamespace(ws_url=cluster.url.replace("http://", "ws://"))
    done = run_example(example_script(tmp_path, proxy, "no-keys-on-this-cluster", data))  # type: ignore[arg-type]
    assert done.returncode == 0, done.stderr
    finals = re.findall(r"^\[FINAL\] (.*)$", done.stdout, flags=re.MULTILINE)
    assert len(finals) == 1, done.stdout
    assert wer(reference(data, CLIP), finals[0]) <= 0.2, finals[0]


def test_an_async_job_through_the_proxy(cluster: Cluster, data: Path) -> None:
    body = {
        "transcribeConfig": {"modelId": TINY},
        "audioData": {"content": base64.b64encode((data / "en" / "jfk.flac").read_bytes()).decode()},
    }
    submitted = httpx.post(f"{cluster.url}/stt/v1/transcribe:async", json=body, timeout=60)
    assert submitted.status_code == 200, submitted.text
    name = submitted.json()["name"]
    guard = time.monotonic() + 120
    while not (op := httpx.get(f"{cluster.url}/lro/v1alpha/{name}", timeout=30).json())["done"]:
        assert time.monotonic() < guard
        time.sleep(0.2)
    assert op["metadata"]["state"] == "SUCCEEDED"
    document = httpx.get(op["response"]["resultUri"], timeout=30).json()
    assert "fellow americans" in normalise(document["transcript"])


def _busiest(cluster: Cluster, pids: list[int]) -> int:
    """The replica decoding now: the one whose CPU time grows most over a moment."""

    def cpu(pid: int) -> int:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime

    before = {pid: cpu(pid) for pid in pids}
    time.sleep(0.5)
    return max(pids, key=lambda pid: cpu(pid) - before[pid])


def test_a_replica_killed_during_a_file_request_costs_nothing(cluster: Cluster, tmp_path: Path) -> None:
    pids = cluster.wait_replicas(2)
    retries = cluster.metric("voxgate_decode_retries_total")
    audio = long_wav(6)  # 66 s: one window, one decode of several seconds
    answer: list[httpx.Response] = []
    thread = threading.Thread(
        target=lambda: answer.append(
            httpx.post(
                f"{cluster.url}/stt/v1/transcribe",
                files={"file": ("long.wav", audio, "audio/wav")},
                data={"modelId": TINY},
                timeout=300,
            )
        )
    )
    thread.start()
    time.sleep(1.0)
    victim = _busiest(cluster, pids)
    os.kill(victim, signal.SIGKILL)
    thread.join(timeout=300)
    (response,) = answer
    assert response.status_code == 200, response.text
    assert normalise(response.json()["transcription"]["transcript"]).count("fellow americans") >= 5
    assert cluster.metric("voxgate_decode_retries_total") > retries  # it was running on the killed replica
    replaced = cluster.wait_replicas(2)  # Ray starts another
    assert victim not in replaced


def test_a_replica_killed_during_a_stream_still_gives_every_final(cluster: Cluster, data: Path, tmp_path: Path) -> None:
    """Three turns (the clip, then a second and a half of silence, three times): a replica is killed while the stream
    runs, and every turn's final still arrives."""
    pids = cluster.wait_replicas(2)
    speech = decode(data / "en" / "jfk.flac")
    pause = np.zeros(int(1.5 * SAMPLE_RATE), dtype=np.float32)
    path = tmp_path / "turns.wav"
    path.write_bytes(encode_wav(np.concatenate([speech, pause] * 3)))
    messages: list[StreamResult] = []
    thread = threading.Thread(target=lambda: messages.extend(_stream(cluster.url, path)))
    thread.start()
    time.sleep(1.5)
    os.kill(_busiest(cluster, pids), signal.SIGKILL)
    thread.join(timeout=300)
    assert not thread.is_alive()
    finals = _finals(messages)
    assert normalise(" ".join(finals)).count("fellow americans") == 3, finals
