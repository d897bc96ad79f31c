"""Async jobs against the sync endpoint, on the same files and server: throughput, overhead per job, the store's
cost per submit (audio as files vs in the database), a sync request's latency behind a backlog of jobs, and what a
SIGKILL mid-queue costs.

    python bench/jobs.py [--files 50] [--model whisper/tiny.en]

Writes bench/results/jobs.json. Everything runs on this machine's CPU, through the real server (uvicorn, loopback).
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from common import DATA, HERE, LiveServer, _free_port, machine_info, report_head, write_report

from voxgate.config import Settings
from voxgate.jobs.sqlite import SqliteJobStore
from voxgate.jobs.store import NewJob
from voxgate.server.app import create_app

SUBMIT = "/stt/v1/transcribe:async"


def clips(count: int) -> list[bytes]:
    folder = DATA / "en" if (DATA / "en").is_dir() else HERE.parent / "tests" / "data" / "en"
    files = sorted(p for p in folder.iterdir() if p.suffix in (".wav", ".flac"))
    return [files[i % len(files)].read_bytes() for i in range(count)]


def long_files(count: int, repeats: int) -> list[bytes]:
    """``count`` WAV files of every ``en`` clip one after another (0.5 s apart, about 50 s), ``repeats`` times over:
    jobs of several windows each, of varied speech (one clip repeated makes Whisper re-decode "repetitive" text)."""
    import numpy as np

    from voxgate.audio.decode import decode
    from voxgate.audio.pcm import encode_wav

    folder = DATA / "en" if (DATA / "en").is_dir() else HERE.parent / "tests" / "data" / "en"
    gap = np.zeros(8000, dtype=np.float32)
    pieces = [x for p in sorted(folder.iterdir()) if p.suffix in (".wav", ".flac") for x in (decode(p), gap)]
    audio = encode_wav(np.concatenate(pieces * repeats))
    return [audio] * count


def body(audio: bytes, model: str) -> dict[str, Any]:
    return {"transcribeConfig": {"modelId": model}, "audioData": {"content": base64.b64encode(audio).decode()}}


def wait_all(client: httpx.Client, names: list[str]) -> list[dict[str, Any]]:
    """Poll the list (one request a sweep, so the polling itself costs the server little) until all are done."""
    wanted = set(names)
    while True:
        ops = client.get("/lro/v1alpha/operations", params={"pageSize": 200}).json()["operations"]
        done = {op["name"]: op for op in ops if op["name"] in wanted and op["done"]}
        if len(done) == len(wanted):
            return [done[n] for n in names]
        time.sleep(0.2)


def sync_round(client: httpx.Client, audios: list[bytes], model: str) -> float:
    started = time.perf_counter()
    for audio in audios:
        response = client.post("/stt/v1/transcribe", json=body(audio, model))
        response.raise_for_status()
    return time.perf_counter() - started


def async_round(client: httpx.Client, audios: list[bytes], model: str) -> tuple[float, list[float]]:
    started = time.perf_counter()
    submits, names = [], []
    for audio in audios:
        t = time.perf_counter()
        response = client.post(SUBMIT, json=body(audio, model))
        submits.append(time.perf_counter() - t)
        response.raise_for_status()
        names.append(response.json()["name"])
    ops = wait_all(client, names)
    assert all(op["metadata"]["state"] == "SUCCEEDED" for op in ops), ops
    for op in ops:  # the results are part of the work a client does
        client.get(op["response"]["resultUri"]).raise_for_status()
    return time.perf_counter() - started, submits


def behind_backlog(client: httpx.Client, audios: list[bytes], model: str) -> dict[str, float]:
    """One sync request's latency on an idle server, then with the rest of the files queued as jobs."""
    probe = audios[0]
    idle = min(sync_round(client, [probe], model) for _ in range(3))
    names = [client.post(SUBMIT, json=body(a, model)).json()["name"] for a in audios[1:]]
    time.sleep(0.5)  # let the runner start on them
    loaded = [sync_round(client, [probe], model) for _ in range(3)]
    wait_all(client, names)
    return {"idle_ms": round(idle * 1000, 1), "backlog_jobs": len(names),
            "with_backlog_ms": [round(x * 1000, 1) for x in loaded]}  # fmt: skip


async def final_latency(ws_url: str, model: str, audio: bytes) -> float:
    """One real-time stream (manual turns): 100 ms LINEAR16 chunks at capture pace, then ``endTurn``; seconds from
    ``endTurn`` sent to the final received."""
    import asyncio
    import json

    import websockets

    from voxgate.audio.decode import decode
    from voxgate.audio.pcm import encode_linear16

    pcm = encode_linear16(decode(audio))
    chunks = [pcm[i : i + 3200] for i in range(0, len(pcm), 3200)]
    config = {
        "modelId": model,
        "audioEncoding": "LINEAR16",
        "sampleRateHertz": 16000,
        "turnDetection": {"mode": "manual"},
    }
    async with websockets.connect(ws_url, max_size=None, open_timeout=60) as ws:
        await ws.send(json.dumps({"transcribeConfig": config}))
        final = asyncio.get_running_loop().create_future()

        async def receive() -> None:
            async for raw in ws:
                t = json.loads(raw).get("result", {}).get("transcription")
                if t and t.get("isFinal") and not final.done():
                    final.set_result(time.perf_counter())

        reader = asyncio.create_task(receive())
        start = time.perf_counter()
        for k, chunk in enumerate(chunks):
            await asyncio.sleep(max(0.0, start + (k + 1) * 0.1 - time.perf_counter()))
            await ws.send(json.dumps({"audioChunk": {"content": base64.b64encode(chunk).decode()}}))
        sent = time.perf_counter()
        await ws.send(json.dumps({"endTurn": {}}))
        received: float = await asyncio.wait_for(final, 120)
        await ws.send(json.dumps({"closeStream": {}}))
        reader.cancel()
        return received - sent


def finals_behind_jobs(
    server: LiveServer, client: httpx.Client, audios: list[bytes], model: str, runs: int = 5
) -> dict[str, Any]:
    """A live stream's final latency on an idle server, then with the files queued as jobs (the jobs still queued
    afterwards are cancelled)."""
    import asyncio

    ws_url = server.url.replace("http", "ws") + "/stt/v1/transcribe:streamBidirectional"
    probe = next(a for a in clips(14) if a.startswith(b"RIFF"))  # a short sentence
    idle = [asyncio.run(final_latency(ws_url, model, probe)) for _ in range(runs)]
    names = [client.post(SUBMIT, json=body(a, model)).json()["name"] for a in audios]
    loaded = [asyncio.run(final_latency(ws_url, model, probe)) for _ in range(runs)]
    ops = client.get("/lro/v1alpha/operations", params={"pageSize": 200}).json()["operations"]
    still = [op["name"] for op in ops if op["name"] in set(names) and not op["done"]]
    for name in still:  # the backlog has served its purpose
        client.post(f"/lro/v1alpha/{name}:cancel")
    return {
        "runs": runs,
        "idle_ms": [round(x * 1000) for x in idle],
        "with_jobs_ms": [round(x * 1000) for x in loaded],
        "idle_median_ms": round(statistics.median(idle) * 1000),
        "with_jobs_median_ms": round(statistics.median(loaded) * 1000),
        "jobs_queued": len(names),
        "jobs_not_done_after_the_streams": len(still),
    }


def store_costs(root: Path, n: int = 200, size: int = 200_000) -> dict[str, Any]:
    """Submit, claim and finish through the real store; and the same submits with the audio as a BLOB in the row."""
    audio = os.urandom(size)
    store = SqliteJobStore(root / "files" / "jobs.sqlite3")
    submit, cycle = [], []
    for _ in range(n):
        t = time.perf_counter()
        store.submit(NewJob(uuid.uuid4().hex, "", b"{}"), audio, max_queued=10 * n, now=time.time())
        submit.append(time.perf_counter() - t)
    for _ in range(n):
        t = time.perf_counter()
        job = store.claim("w", lease_seconds=30, max_attempts=3, retention=3600, now=time.time())
        assert job is not None
        store.renew(job.id, "w", 1, lease_seconds=30, progress=50, now=time.time())
        store.finish(job.id, "w", 1, result=b"{}" * 500, retention=3600, now=time.time())
        cycle.append(time.perf_counter() - t)
    store.close()
    (root / "blob").mkdir()
    db = sqlite3.connect(root / "blob" / "jobs.sqlite3", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE jobs (id TEXT PRIMARY KEY, audio BLOB)")
    blob = []
    for _ in range(n):
        t = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO jobs VALUES (?, ?)", (uuid.uuid4().hex, audio))
        db.execute("COMMIT")
        blob.append(time.perf_counter() - t)
    wal = (root / "blob" / "jobs.sqlite3-wal").stat().st_size
    db.close()

    def ms(xs: list[float]) -> dict[str, float]:
        xs = sorted(xs)
        return {"median": round(statistics.median(xs) * 1000, 2), "p95": round(xs[int(0.95 * len(xs))] * 1000, 2)}

    return {
        "jobs": n,
        "audio_bytes": size,
        "submit_audio_as_file_ms": ms(submit),
        "submit_audio_as_blob_ms": ms(blob),
        "blob_wal_bytes_after": wal,
        "claim_renew_finish_ms": ms(cycle),
    }


def sigkill_cost(audios: list[bytes], model: str, home: Path, window: float = 15.0) -> dict[str, Any]:
    """Queue the files, SIGKILL the server while it works through them (once a job is under way, past its first
    window), start it again: how many complete, how many runs it took, how many windows were not redone."""
    env = {**os.environ, "VOXGATE_HOME": str(home), "VOXGATE_DEFAULT_MODEL": model, "VOXGATE_PRELOAD": "[]",
           "VOXGATE_CONSOLE": "false", "VOXGATE_JOB_LEASE_SECONDS": "3",
           "VOXGATE_JOB_WINDOW_SECONDS": str(window)}  # fmt: skip
    home.mkdir(parents=True, exist_ok=True)
    log = home / "server.log"

    def start() -> tuple[subprocess.Popen[bytes], str]:
        port = _free_port()
        with open(log, "ab") as out:
            p = subprocess.Popen([sys.executable, "-m", "voxgate", "serve", "--port", str(port)],
                                 env=env, stdout=out, stderr=out)  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        while True:
            try:
                if httpx.get(url + "/healthz").status_code == 200:
                    return p, url
            except httpx.TransportError:
                time.sleep(0.1)

    process, url = start()
    with httpx.Client(base_url=url, timeout=120) as client:
        names = [client.post(SUBMIT, json=body(a, model)).json()["name"] for a in audios]
        while True:
            states = [client.get(f"/lro/v1alpha/{n}").json() for n in names]
            if sum(s["done"] for s in states) >= len(names) // 2 and any(
                s["metadata"]["state"] == "RUNNING" and s["metadata"]["progressPercent"] > 0 for s in states
            ):
                break
            time.sleep(0.2)
    process.send_signal(signal.SIGKILL)
    process.wait()
    in_flight = [s for s in states if s["metadata"]["state"] == "RUNNING"]
    started = time.perf_counter()
    process, url = start()
    with httpx.Client(base_url=url, timeout=120) as client:
        ops = wait_all(client, names)
    recovery = time.perf_counter() - started
    process.terminate()
    process.wait()
    text = log.read_text()
    kept = [int(m) for m in re.findall(r"(\d+) window\(s\) kept from an earlier attempt", text)]
    return {
        "jobs": len(names),
        "audio_seconds_each": [round(len(a) / 32000, 1) for a in audios],
        "window_seconds": window,
        "windows_kept_after_restart": kept,
        "done_before_kill": sum(s["done"] for s in states),
        "running_at_kill": len(in_flight),
        "progress_at_kill_percent": [s["metadata"]["progressPercent"] for s in in_flight],
        "succeeded_after_restart": sum(op["metadata"]["state"] == "SUCCEEDED" for op in ops),
        "lost": sum(op["metadata"]["state"] != "SUCCEEDED" for op in ops),
        "runs": sum(op["metadata"]["attempts"] for op in ops),
        "restart_to_all_done_seconds": round(recovery, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--model", default="whisper/tiny.en")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--sigkill-only", action="store_true", help="Only the SIGKILL part (its own JSON file).")
    parser.add_argument("--streams-only", action="store_true", help="Only stream finals behind jobs (own JSON file).")
    parser.add_argument("--job-window", type=float, default=None, help="VOXGATE_JOB_WINDOW_SECONDS for the server.")
    args = parser.parse_args()
    if args.streams_only:
        begun = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(home=Path(tmp), default_model=args.model, preload=["default"], console=False)
            if args.job_window is not None:
                settings = settings.model_copy(update={"job_window_seconds": args.job_window})
            with LiveServer(create_app(settings)) as server, httpx.Client(base_url=server.url, timeout=600) as client:
                sync_round(client, clips(2), args.model)  # warm
                finals = finals_behind_jobs(server, client, long_files(40, 1), args.model)
        print(finals, flush=True)
        report = report_head("jobs-streams", time.perf_counter() - begun, DATA)
        window = settings.job_window_seconds
        report.update(machine=machine_info(["voxgate"]), model=args.model, job_window_seconds=window,
                      finals_behind_jobs=finals)  # fmt: skip
        suffix = "" if args.job_window is None else f"-window{window:g}"
        write_report(HERE / "results" / f"jobs-streams{suffix}.json", report)
        return
    if args.sigkill_only:
        with tempfile.TemporaryDirectory() as tmp:
            begun = time.perf_counter()
            killed = sigkill_cost(long_files(6, 2), args.model, Path(tmp) / "killed")
            print(killed, flush=True)
        report = report_head("jobs-sigkill", time.perf_counter() - begun, DATA)
        report.update(machine=machine_info(["voxgate"]), model=args.model, sigkill=killed)
        write_report(HERE / "results" / "jobs-sigkill.json", report)
        return
    audios = clips(args.files)
    begun = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings = Settings(home=root / "home", default_model=args.model, preload=["default"], console=False)
        rounds = []
        with LiveServer(create_app(settings)) as server, httpx.Client(base_url=server.url, timeout=600) as client:
            sync_round(client, audios[:2], args.model)  # warm
            for _ in range(args.rounds):
                sync = sync_round(client, audios, args.model)
                job, submits = async_round(client, audios, args.model)
                rounds.append({"sync_seconds": round(sync, 2), "async_seconds": round(job, 2),
                               "ratio_async_over_sync": round(job / sync, 3),
                               "overhead_per_job_ms": round((job - sync) / len(audios) * 1000, 1),
                               "submit_ms_median": round(statistics.median(submits) * 1000, 1)})  # fmt: skip
                print(rounds[-1], flush=True)
            backlog = behind_backlog(client, audios[:21], args.model)
            print(backlog, flush=True)
        store = store_costs(root / "store")
        print(store, flush=True)
        killed = sigkill_cost(audios[:10], args.model, root / "killed")
        print(killed, flush=True)
    report = report_head("jobs", time.perf_counter() - begun, DATA)
    report.update(
        machine=machine_info(["voxgate", "faster-whisper", "ctranslate2"]),
        files=len(audios),
        model=args.model,
        rounds=rounds,
        sync_latency_behind_jobs=backlog,
        store=store,
        sigkill=killed,
    )
    write_report(HERE / "results" / "jobs.json", report)


if __name__ == "__main__":
    main()
