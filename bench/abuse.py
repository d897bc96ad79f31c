"""A healthy stream beside a flood of garbage: does one bad client hurt another?

Starts ``voxgate serve`` in its own process (so its memory and its survival are its own), then streams English clips
at real-time pace, one after another, twice: alone, and while ``--flooders`` clients send garbage as fast as the
server answers them — hostile files (9 channels, 1 Hz headers, ffconcat and HLS playlists, an SDP, random bytes),
absurd model ids, broken JSON, and WebSocket streams of junk frames. Reported, in one run:

* the healthy stream's end of speech → final latency (p50, p95) alone and under the flood, and their ratio;
* every garbage answer by status (a 5xx is a failure), the slowest one, and whether the server is still alive;
* the server's memory high-water (VmHWM) and its CPU time.

    python bench/abuse.py                       # whisper/tiny.en, 40 s of flood, 4 flooders
    python bench/abuse.py --model whisper/base --flooders 8

Writes ``bench/results/abuse.json``. Needs only the repository (clips from ``tests/data/en``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import wave
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import websockets
from common import _free_port, loadavg, machine_info, write_report

from voxgate.audio.decode import decode
from voxgate.audio.pcm import encode_linear16
from voxgate.types import SAMPLE_RATE, Audio

HERE = Path(__file__).resolve().parent
CLIPS = HERE.parent / "tests" / "data" / "en"


# -- garbage ------------------------------------------------------------------------------------------------------


def _wav(channels: int, rate: int, frames: int) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\0\0" * channels * frames)
    return out.getvalue()


def hostile_files(rng: random.Random) -> list[tuple[str, bytes]]:
    return [
        ("9-channels", _wav(9, 16000, 16)),
        ("1-hz-header", _wav(1, 1, 8000)),
        ("ffconcat", b"ffconcat version 1.0\nfile '/etc/passwd'\nfile 'README.md'\n"),
        ("hls", b"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n"),
        ("sdp", b"v=0\no=- 0 0 IN IP4 0.0.0.0\ns=x\nc=IN IP4 0.0.0.0\nt=0 0\nm=audio 5004 RTP/AVP 0\n"),
        ("random", rng.randbytes(20_000)),
        ("truncated-wav", _wav(1, 16000, 16000)[:1000]),
    ]


async def flood_rest(client: httpx.AsyncClient, rng: random.Random, stop: asyncio.Event, out: dict[str, Any]) -> None:
    files = hostile_files(rng)
    while not stop.is_set():
        kind = rng.randrange(4)
        started = time.perf_counter()
        if kind == 0:
            name, body = rng.choice(files)
            r = await client.post("/stt/v1/transcribe", files={"file": (name, body)})
        elif kind == 1:
            name = "bad-model-id"
            model = rng.choice(["whisper/" + "a" * 5000, "whisper//etc", "whisper/../../usr", "deepgram/x y"])
            audio = {"content": base64.b64encode(bytes(3200)).decode()}
            config = {"modelId": model, "audioEncoding": "LINEAR16", "sampleRateHertz": 16000}
            r = await client.post("/stt/v1/transcribe", json={"transcribeConfig": config, "audioData": audio})
        elif kind == 2:
            name = "broken-json"
            r = await client.post("/stt/v1/transcribe", content=b'{"audioData": {"content": [' * 50)
        else:
            name, body = rng.choice(files)
            name = "openai-" + name
            r = await client.post("/v1/audio/transcriptions", files={"file": (name, body)}, data={"model": "whisper-1"})
        took = time.perf_counter() - started
        out["answers"][f"{r.status_code}"] += 1
        out["by_input"][f"{name} {r.status_code}"] += 1
        if r.status_code >= 500:
            out["server_errors"].append({"input": name, "status": r.status_code, "body": r.text[:300]})
        out["slowest_s"] = max(out["slowest_s"], took)


async def flood_ws(url: str, rng: random.Random, stop: asyncio.Event, out: dict[str, Any]) -> None:
    frames = [
        "not json",
        '{"audioChunk": {"content": "!!!"}}',
        '{"transcribeConfig": {"modelId": "' + "m" * 5000 + '"}}',
        json.dumps({"transcribeConfig": {"sampleRateHertz": -5}}),
        "[" * 10_000,
    ]
    while not stop.is_set():
        started = time.perf_counter()
        try:
            async with websockets.connect(url, open_timeout=30, close_timeout=5) as ws:
                await ws.send(rng.choice(frames))
                await ws.send(rng.randbytes(rng.randrange(1, 4096)))
                async for _ in ws:
                    pass
        except websockets.ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd else None
            out["ws_closes"][str(code)] += 1
        except (OSError, TimeoutError) as exc:
            out["ws_closes"][type(exc).__name__] += 1
        else:
            out["ws_closes"]["clean"] += 1
        out["slowest_s"] = max(out["slowest_s"], time.perf_counter() - started)


# -- the healthy stream -------------------------------------------------------------------------------------------


def speech_end(audio: Audio) -> float:
    """Seconds to the end of the last 20 ms frame louder than -40 dBFS (the clips are clean read speech)."""
    frame = SAMPLE_RATE // 50
    n = len(audio) // frame
    rms = np.sqrt(np.mean(audio[: n * frame].reshape(n, frame) ** 2, axis=1) + 1e-12)
    loud = np.nonzero(20 * np.log10(rms) > -40)[0]
    return float((loud[-1] + 1) * frame / SAMPLE_RATE) if len(loud) else 0.0


async def healthy_stream(url: str, model: str, audio: Audio, chunk_s: float = 0.1) -> float | None:
    """Stream ``audio`` then 2 s of silence in real time (semantic turns); seconds from the end of speech to the
    first final that arrives after it, or None when none did."""
    pcm = encode_linear16(np.concatenate([audio, np.zeros(2 * SAMPLE_RATE, dtype=np.float32)]))
    step = 2 * round(chunk_s * SAMPLE_RATE)
    end = speech_end(audio)
    finals: list[float] = []
    async with websockets.connect(url, open_timeout=60) as ws:
        config = {"modelId": model, "audioEncoding": "LINEAR16", "sampleRateHertz": SAMPLE_RATE}
        await ws.send(json.dumps({"transcribeConfig": config}))

        async def receive() -> None:
            async for raw in ws:
                message = json.loads(raw)
                result = message.get("result", {}).get("transcription")
                if result and result.get("isFinal") and result.get("transcript", "").strip():
                    finals.append(time.perf_counter())

        receiver = asyncio.create_task(receive())
        t0 = time.perf_counter()
        for k, i in enumerate(range(0, len(pcm), step)):
            await asyncio.sleep(max(0.0, t0 + k * chunk_s - time.perf_counter()))
            await ws.send(json.dumps({"audioChunk": {"content": base64.b64encode(pcm[i : i + step]).decode()}}))
        await ws.send('{"closeStream": {}}')
        await asyncio.wait_for(receiver, 60)
    after = [f - (t0 + end) for f in finals if f - (t0 + end) > -0.5]
    return min(after) if after else None


async def healthy_run(url: str, model: str, clips: list[Audio], seconds: float) -> list[float | None]:
    latencies: list[float | None] = []
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        for audio in clips:
            latencies.append(await healthy_stream(url, model, audio))
            if time.perf_counter() - started >= seconds:
                break
    return latencies


# -- the server ---------------------------------------------------------------------------------------------------


def memory_high_water(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)) * 1000, 1) if values else None


async def phase(name: str, base: str, model: str, clips: list[Audio], args: argparse.Namespace) -> dict[str, Any]:
    ws_url = base.replace("http", "ws", 1) + "/stt/v1/transcribe:streamBidirectional"
    out: dict[str, Any] = {"answers": Counter(), "by_input": Counter(), "ws_closes": Counter(), "server_errors": []}
    out["slowest_s"] = 0.0
    stop = asyncio.Event()
    flooders: list[asyncio.Task[None]] = []
    limits = httpx.Limits(max_connections=args.flooders * 2)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        if name == "flood":
            rng = random.Random(7)
            for i in range(args.flooders):
                seed = random.Random(rng.random())
                task = flood_rest(client, seed, stop, out) if i % 2 == 0 else flood_ws(ws_url, seed, stop, out)
                flooders.append(asyncio.create_task(task))
        latencies = await healthy_run(ws_url, model, clips, args.seconds)
        stop.set()
        await asyncio.gather(*flooders, return_exceptions=True)
        alive = (await client.get("/healthz")).status_code == 200
    got = [x for x in latencies if x is not None]
    return {
        "streams": len(latencies),
        "finals_missing": len(latencies) - len(got),
        "final_p50_ms": pct(got, 50),
        "final_p95_ms": pct(got, 95),
        "garbage_answers": dict(out["answers"]),
        "garbage_answers_by_input": dict(sorted(out["by_input"].items())),
        "garbage_streams_closed": dict(out["ws_closes"]),
        "server_errors": out["server_errors"][:20],
        "server_error_count": len(out["server_errors"]),
        "slowest_garbage_answer_s": round(out["slowest_s"], 3),
        "alive_after": alive,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="whisper/tiny.en")
    parser.add_argument("--seconds", type=float, default=40.0, help="healthy streaming per phase")
    parser.add_argument("--flooders", type=int, default=4)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "abuse.json")
    args = parser.parse_args(argv)

    clips = [decode(CLIPS / name) for name in ("spk1_snt1.wav", "spk2_snt3.wav", "spk1_snt4.wav", "spk2_snt6.wav")]
    port = _free_port()
    home = tempfile.mkdtemp(prefix="voxgate-abuse-")
    env = dict(os.environ, VOXGATE_HOME=home, VOXGATE_DEFAULT_MODEL=args.model, VOXGATE_PORT=str(port))
    started_at = time.time()
    load_before = loadavg()
    log = Path(home) / "server.log"
    server = subprocess.Popen(
        [sys.executable, "-m", "voxgate", "serve"], env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb")
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("the server did not start")
            time.sleep(0.2)
        cpu0 = cpu_seconds(server.pid) or 0.0
        alone = asyncio.run(phase("alone", base, args.model, clips, args))
        cpu1 = cpu_seconds(server.pid) or 0.0
        flood = asyncio.run(phase("flood", base, args.model, clips, args))
        cpu2 = cpu_seconds(server.pid) or 0.0
        high_water = memory_high_water(server.pid)
        crashed = server.poll() is not None
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()

    def ratio(key: str) -> float | None:
        a, b = alone[key], flood[key]
        return round(b / a, 2) if a and b else None

    report = {
        "benchmark": "abuse",
        "model": args.model,
        "flooders": args.flooders,
        "seconds_per_phase": args.seconds,
        "machine": machine_info(("faster-whisper", "ctranslate2", "av", "uvicorn", "starlette")),
        "load_average_before": load_before,
        "load_average_after": loadavg(),
        "wall_s": round(time.time() - started_at, 1),
        "alone": alone,
        "flood": flood,
        "p50_ratio": ratio("final_p50_ms"),
        "p95_ratio": ratio("final_p95_ms"),
        "server_cpu_s": {"alone": round(cpu1 - cpu0, 1), "flood": round(cpu2 - cpu1, 1)},
        "server_memory_high_water_mb": round(high_water / 2**20) if high_water else None,
        "server_crashed": crashed,
    }
    write_report(args.out, report)
    print(f"model {args.model}; load before {load_before}, after {report['load_average_after']}")
    for name in ("alone", "flood"):
        p = report[name]
        print(
            f"{name:>6}: {p['streams']} streams, final p50 {p['final_p50_ms']} ms, p95 {p['final_p95_ms']} ms, "
            f"{p['finals_missing']} missing; garbage answers {p['garbage_answers']}, "
            f"ws closes {p['garbage_streams_closed']}, 5xx {p['server_error_count']}, "
            f"slowest bad answer {p['slowest_garbage_answer_s']} s"
        )
    print(
        f"flood/alone: p50 x{report['p50_ratio']}, p95 x{report['p95_ratio']}; server memory high-water "
        f"{report['server_memory_high_water_mb']} MB; crashed: {crashed}"
    )
    print(f"wrote {args.out} (server log: {log})")
    return 1 if crashed or flood["server_error_count"] or not flood["alive_after"] else 0


if __name__ == "__main__":
    sys.exit(main())
