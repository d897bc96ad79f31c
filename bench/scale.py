"""The Ray Serve path against the single process, on the same machine and model: the overhead per file request
(latency ratio) and per stream final (the server's own final-latency histogram), and file throughput with 1 and 2
model replicas.

    python bench/scale.py [--model whisper/tiny.en] [--requests 12] [--concurrency 4]

Each configuration is a real server started here: ``voxgate serve`` (one process), then ``voxgate serve --ray`` with
one model replica, then with two (a Ray head on this machine each time). Writes bench/results/scale.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from common import HERE, _free_port, loadavg, machine_info, report_head, write_report

from voxgate.client import stream_file
from voxgate.protocol.ws import ResultMessage, SpeechStoppedMessage

CLIP = HERE.parent / "tests" / "data" / "en" / "jfk.flac"
CLIP_SECONDS = 11.0


@contextmanager
def server(model: str, replicas: int | None, log: Path) -> Iterator[str]:
    """``voxgate serve`` (``replicas`` None) or ``voxgate serve --ray`` with that many model replicas."""
    tmp = Path(tempfile.mkdtemp(prefix="vxbench-"))
    port = _free_port()
    env = {
        **os.environ,
        "RAY_TMPDIR": str(tmp),
        "RAY_USAGE_STATS_ENABLED": "0",
        "VOXGATE_HOME": str(tmp / "home"),
        "VOXGATE_DEFAULT_MODEL": model,
        "VOXGATE_PRELOAD": '["default"]',
        "VOXGATE_CONSOLE": "false",
        "PYTHONPATH": str(HERE.parent),
    }
    command = [sys.executable, "-m", "voxgate", "serve", "--port", str(port), "--log-level", "warning"]
    if replicas is not None:
        command += ["--ray", "--ray-model", model, "--model-replicas", str(replicas)]
    with open(log, "ab") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=out, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        guard = time.monotonic() + 300
        while True:
            if process.poll() is not None or time.monotonic() > guard:
                raise RuntimeError(f"the server did not start: {log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{url}/healthz", timeout=5).json().get("models_loaded"):
                    break
            except (httpx.TransportError, ValueError):
                pass
            time.sleep(0.5)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)


def transcribe(url: str, clip: bytes, model: str) -> float:
    started = time.perf_counter()
    response = httpx.post(
        f"{url}/stt/v1/transcribe",
        files={"file": ("clip.flac", clip, "audio/flac")},
        data={"modelId": model, "language": "en"},
        timeout=600,
    )
    response.raise_for_status()
    return time.perf_counter() - started


def file_latency(url: str, clip: bytes, model: str, requests: int) -> dict[str, float]:
    transcribe(url, clip, model)  # warm
    times = [transcribe(url, clip, model) for _ in range(requests)]
    return {"median_s": round(statistics.median(times), 3), "min_s": round(min(times), 3)}


def final_latency(url: str, model: str, streams: int) -> dict[str, float]:
    """Streams of the clip at real time. Two measures of each final: the client's (``speechStopped`` received to
    the turn's final received: the decode's trip through Ray is inside it, the VAD's wait is the same in both modes)
    and the server's own histogram (end of turn to the final sent, summed over every replica's samples)."""

    def histogram() -> tuple[float, float]:
        text = httpx.get(f"{url}/metrics", timeout=30).text
        sums = re.findall(r"^voxgate_stream_final_latency_seconds_sum(?:\{[^}]*\})? (\S+)$", text, re.MULTILINE)
        counts = re.findall(r"^voxgate_stream_final_latency_seconds_count(?:\{[^}]*\})? (\S+)$", text, re.MULTILINE)
        return (sum(map(float, sums)), sum(map(float, counts)))

    async def one() -> list[float]:
        stopped: dict[int, float] = {}
        gaps: list[float] = []
        async for message in stream_file(url, CLIP, realtime=True, model_id=model):
            if isinstance(message, SpeechStoppedMessage):
                stopped[message.result.speech_stopped.turn_index] = time.perf_counter()
            elif isinstance(message, ResultMessage) and message.result.transcription.is_final:
                at = stopped.pop(message.result.transcription.turn_index, None)
                if at is not None:
                    gaps.append(time.perf_counter() - at)
        return gaps

    asyncio.run(one())  # warm
    before = histogram()
    gaps = [gap for _ in range(streams) for gap in asyncio.run(one())]
    after = histogram()
    finals = after[1] - before[1]
    return {
        "finals": finals,
        "server_mean_final_latency_s": round((after[0] - before[0]) / max(1.0, finals), 3),
        "client_finals": len(gaps),
        "client_stopped_to_final_median_s": round(statistics.median(gaps), 3) if gaps else float("nan"),
        "client_stopped_to_final_mean_s": round(statistics.fmean(gaps), 3) if gaps else float("nan"),
    }


def throughput(url: str, clip: bytes, model: str, requests: int, concurrency: int) -> dict[str, float]:
    transcribe(url, clip, model)
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda _: transcribe(url, clip, model), range(requests)))
    wall = time.perf_counter() - started
    return {
        "requests": requests,
        "concurrency": concurrency,
        "wall_s": round(wall, 2),
        "audio_seconds_per_second": round(requests * CLIP_SECONDS / wall, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="whisper/tiny.en")
    parser.add_argument("--requests", type=int, default=12)
    parser.add_argument("--streams", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "scale.json")
    parser.add_argument(
        "--again",
        action="store_true",
        help="run the single process a second time at the end (on a shared machine: is its number the load's?)",
    )
    args = parser.parse_args()
    clip = CLIP.read_bytes()
    log = Path(tempfile.mkdtemp(prefix="vxbench-log-")) / "servers.log"
    started = time.perf_counter()
    runs: dict[str, Any] = {}
    configs: list[tuple[str, int | None]] = [("single_process", None), ("ray_1_replica", 1), ("ray_2_replicas", 2)]
    if args.again:
        configs.append(("single_process_again", None))
    for name, replicas in configs:
        print(f"{name}: starting", file=sys.stderr)
        with server(args.model, replicas, log) as url:
            run: dict[str, Any] = {"load_average_before": loadavg()}
            run["file"] = file_latency(url, clip, args.model, args.requests)
            if replicas != 2:  # the final's overhead: one replica is enough to see it
                run["stream"] = final_latency(url, args.model, args.streams)
            run["throughput"] = throughput(url, clip, args.model, args.requests * 2, args.concurrency)
            run["load_average_after"] = loadavg()
            runs[name] = run
            print(f"{name}: {run}", file=sys.stderr)
    single, ray1, ray2 = runs["single_process"], runs["ray_1_replica"], runs["ray_2_replicas"]
    summary = {
        "file_latency_ratio_ray_over_single": round(ray1["file"]["median_s"] / single["file"]["median_s"], 3),
        "final_latency_added_ms": round(
            1000
            * (
                ray1["stream"]["client_stopped_to_final_median_s"]
                - single["stream"]["client_stopped_to_final_median_s"]
            ),
            1,
        ),
        "server_final_latency_added_ms": round(
            1000 * (ray1["stream"]["server_mean_final_latency_s"] - single["stream"]["server_mean_final_latency_s"]), 1
        ),
        "throughput_2_over_1_replicas": round(
            ray2["throughput"]["audio_seconds_per_second"] / ray1["throughput"]["audio_seconds_per_second"], 3
        ),
    }
    report = {
        **report_head("scale", time.perf_counter() - started, CLIP),
        "machine": machine_info(["ray", "ctranslate2", "faster-whisper"]),
        "model": args.model,
        "clip": f"{CLIP.name} ({CLIP_SECONDS:.0f} s)",
        "runs": runs,
        "summary": summary,
    }
    write_report(args.out, report)
    print(summary)


if __name__ == "__main__":
    main()
