"""How many simultaneous real-time streams one server keeps under 1 s of final latency (CPU).

Per model and per ``stream_batching`` setting (partials of all streams batched into one decode, or each decoded on
its own) a live server (the real app built with ``create_app(Settings(..., stream_batching=...))``, uvicorn on a
loopback port in a background thread), and for N = 1, 2, 3, 4, 6, 8 (``--levels``) N WebSocket streams at once:

* each stream sends ``--duration`` seconds (default 20) of audio in real time, as 100 ms LINEAR16 chunks, chunk k
  sent at t0 + (k + 1) x 100 ms (when its last sample would have been captured); stream i starts i x 0.25 s after
  stream 0 (``--stagger``) so that turns do not all end at the same moment;
* its audio is the clips of ``en/MANIFEST.tsv``, each followed by 1.2 s of silence, cycling through the clips from
  clip 3i (streams say different things), until ``--duration`` is filled;
* ``vad`` turn detection (a 700 ms pause ends a turn: deterministic turn ends) with partials on (500 ms cadence).

Final latency (the headline, "from turn end"): the final's arrival minus the wall time the client sent the chunk
holding the stream position where the server ended the turn (``endOfTurn.timeSeconds``). That position is set by the
audio alone (the VAD), not by load, so this is the delay the server adds after the turn is over; the 700 ms pause the
``vad`` policy waits by design is not in it. Also reported ("from speech end"): the same final minus the wall time the
client sent the chunk holding the utterance's offline last word end (``Service.transcribe_sync`` word timestamps of
each clip with ``--reference-model``, once), which adds that pause and whatever the VAD hears after the last word.

Both settings of a model are served at once (two apps, two copies of the model) and, per N, run back to back,
alternating which goes first, so that load from other processes hits both alike; a setting stops at its first
failing N. The bench wraps the loaded engine's decode methods (in this process, on the instance) to log what the
server's one worker ran: how busy it was, how many partial drafts each batched call held, how long turn decodes took.

A level passes when p95 final latency (from turn end) < 1 s and no stream fell behind real time: the client never
sent a chunk more than 300 ms late, and no ``endOfTurn`` arrived more than 500 ms after the client sent the audio it
is dated at (the server processing incoming audio late). The levels stop rising at the first failure.

Partials: delivered per stream per second of audio, and against the ideal of one per 500 ms of speech (each VAD
speech segment of ``s`` seconds allows floor(s / 0.5)): fewer means partials were skipped (the scheduler drops a
batched partial queued 1 s past its deadline) or held back (one partial in flight per stream at a time).

    python bench/concurrency.py                               # both models, batching on and off
    python bench/concurrency.py --models whisper/tiny.en --levels 1 2 4 8 --duration 30
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import logging
import math
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import websockets
from common import DATA, CpuMeter, LiveServer, describe_load, machine_info, read_manifest, report_head, write_report
from rich.console import Console
from rich.table import Table

from voxgate.audio.decode import decode
from voxgate.audio.pcm import encode_linear16
from voxgate.config import Settings
from voxgate.server.app import create_app
from voxgate.service import Service
from voxgate.types import SAMPLE_RATE, Audio, TranscriptionOptions

MACHINE_DISTS = ("voxgate", "faster-whisper", "ctranslate2", "onnxruntime", "uvicorn", "websockets")
OUT = Path(__file__).resolve().parent / "results" / "concurrency.json"
MODELS = ("whisper/tiny.en", "whisper/base")
LEVELS = (1, 2, 3, 4, 6, 8)
ENDPOINT = "/stt/v1/transcribe:streamBidirectional"
THRESHOLD_S = 1.0
"""p95 final latency (from turn end) a level must stay under."""
SEND_LAG_LIMIT_S = 0.3
EVENT_LAG_LIMIT_S = 0.5
PARTIAL_INTERVAL_S = 0.5

console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)


# -- machine and files ---------------------------------------------------------------------------------------------


def summary(values: list[float]) -> dict[str, Any]:
    """n, p50 / p95 / mean / max in milliseconds of values in seconds."""
    out: dict[str, Any] = {"n": len(values)}
    if values:
        arr = np.asarray(values) * 1000
        out.update(
            p50_ms=round(float(np.percentile(arr, 50)), 1),
            p95_ms=round(float(np.percentile(arr, 95)), 1),
            mean_ms=round(float(arr.mean()), 1),
            max_ms=round(float(arr.max()), 1),
        )
    return out


# -- audio ---------------------------------------------------------------------------------------------------------


@dataclass
class Clip:
    name: str
    audio: Audio
    speech_end: float
    """Offline last word end, seconds into the clip."""


def load_clips(data: Path, reference_model: str, settings: Settings) -> list[Clip]:
    """The clips, with where their speech ends by an offline decode (``Service.transcribe_sync`` word times)."""
    service = Service(settings)
    clips = []
    try:
        for row in read_manifest(data / "en" / "MANIFEST.tsv"):
            path = data / "en" / row["path"]
            words = service.transcribe_sync(path, TranscriptionOptions(), reference_model).words
            audio = decode(path)
            clips.append(Clip(row["path"], audio, words[-1].end if words else len(audio) / SAMPLE_RATE))
    finally:
        service.close()
    return clips


@dataclass
class Program:
    """What one stream says: utterances (clip name, offset and offline speech end in the stream) and the audio."""

    audio: Audio
    utterances: list[tuple[str, float, float]]


def program(clips: list[Clip], first: int, duration: float, gap: float) -> Program:
    silence = np.zeros(round(gap * SAMPLE_RATE), dtype=np.float32)
    parts: list[Audio] = []
    utterances = []
    offset = 0
    i = first
    while offset < duration * SAMPLE_RATE:
        clip = clips[i % len(clips)]
        utterances.append((clip.name, round(offset / SAMPLE_RATE, 3), round(offset / SAMPLE_RATE + clip.speech_end, 3)))
        parts += [clip.audio, silence]
        offset += len(clip.audio) + len(silence)
        i += 1
    return Program(np.concatenate(parts), utterances)


# -- one stream ----------------------------------------------------------------------------------------------------


async def run_stream(
    url: str, model_id: str, prog: Program, *, delay: float, chunk_s: float, diarize: bool = False
) -> dict[str, Any]:
    """Stream ``prog`` in real time after ``delay`` seconds; return what was sent when and what arrived when."""
    await asyncio.sleep(delay)
    samples = round(chunk_s * SAMPLE_RATE)
    pcm = encode_linear16(prog.audio)
    chunks = [pcm[i : i + 2 * samples] for i in range(0, len(pcm), 2 * samples)]
    config = {
        "transcribeConfig": {
            "modelId": model_id,
            "audioEncoding": "LINEAR16",
            "sampleRateHertz": SAMPLE_RATE,
            "turnDetection": {"mode": "vad"},
            "enablePartials": True,
            "partialIntervalMs": round(PARTIAL_INTERVAL_S * 1000),
            **({"diarizationConfig": {"enableSpeakerDiarization": True}} if diarize else {}),
        }
    }
    received: list[tuple[float, dict[str, Any]]] = []
    errors: list[str] = []
    sends: list[float] = []
    async with websockets.connect(url, max_size=None, open_timeout=60) as ws:
        await ws.send(json.dumps(config))

        async def receive() -> None:
            try:
                async for raw in ws:
                    message = json.loads(raw)
                    received.append((time.perf_counter(), message))
                    if "error" in message:
                        errors.append(f"{message['error']['code']}: {message['error']['message']}")
            except websockets.ConnectionClosed as exc:
                errors.append(f"closed {exc.rcvd.code if exc.rcvd else None}")

        receiver = asyncio.create_task(receive())
        t0 = time.perf_counter()
        for k, chunk in enumerate(chunks):
            wait = t0 + (k + 1) * chunk_s - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            if receiver.done():
                break
            try:
                await ws.send(json.dumps({"audioChunk": {"content": base64.b64encode(chunk).decode("ascii")}}))
            except websockets.ConnectionClosed:
                break
            sends.append(time.perf_counter())
        close_at = time.perf_counter()
        if not receiver.done():
            await ws.send('{"closeStream": {}}')
        await asyncio.wait_for(receiver, timeout=300)
        closed_at = time.perf_counter()
    return analyse(prog, t0, chunk_s, sends, received, errors, closed_at - close_at)


def analyse(
    prog: Program,
    t0: float,
    chunk_s: float,
    sends: list[float],
    received: list[tuple[float, dict[str, Any]]],
    errors: list[str],
    drain_s: float,
) -> dict[str, Any]:
    def sent_at(end: float) -> float:
        """Wall time the client sent the chunk holding the last sample before stream position ``end``."""
        return sends[min(max(0, math.ceil(end / chunk_s - 1e-6) - 1), len(sends) - 1)]

    finals: dict[int, tuple[float, dict[str, Any]]] = {}
    turn_ends: dict[int, tuple[float, dict[str, Any]]] = {}
    partials = 0
    speech: list[float] = []  # alternating start/end times
    for at, m in received:
        result = m.get("result", {})  # the reference's shape: transcription, speechStarted/Stopped, usage in "result"
        if "transcription" in result:
            tr = result["transcription"]
            if tr["isFinal"]:
                finals.setdefault(tr["turnIndex"], (at, tr))
            else:
                partials += 1
        elif "endOfTurn" in m:
            turn_ends[m["endOfTurn"]["turnIndex"]] = (at, m["endOfTurn"])
        elif "speechStarted" in result:
            speech.append(result["speechStarted"]["timeSeconds"])
        elif "speechStopped" in result and len(speech) % 2 == 1:
            speech.append(result["speechStopped"]["timeSeconds"])
    if len(speech) % 2 == 1:
        speech.append(len(sends) * chunk_s)
    segments = [b - a for a, b in zip(speech[::2], speech[1::2], strict=True)]

    from_turn_end, event_lags, reasons = [], [], {}
    for turn, (at, tr) in finals.items():
        end = turn_ends.get(turn)
        if end is None or not tr["transcript"].strip():
            continue
        reasons[end[1]["reason"]] = reasons.get(end[1]["reason"], 0) + 1
        from_turn_end.append(at - sent_at(end[1]["timeSeconds"]))
        event_lags.append(end[0] - sent_at(end[1]["timeSeconds"]))
    from_speech_end, merged = [], 0
    audio_s = len(sends) * chunk_s
    for _, _, speech_end in prog.utterances:
        if speech_end > audio_s:
            continue
        # The first turn the server ended at or after this utterance's last word holds it.
        holding = sorted(
            (e["timeSeconds"], turn) for turn, (_, e) in turn_ends.items() if e["timeSeconds"] >= speech_end
        )
        if not holding or holding[0][1] not in finals:
            continue
        end_time, turn = holding[0]
        if any(o > speech_end and o < end_time for _, o, _ in prog.utterances):
            merged += 1  # the turn ran into the next utterance: no pause long enough was heard
            continue
        from_speech_end.append(finals[turn][0] - sent_at(speech_end))
    lags = [s - (t0 + (k + 1) * chunk_s) for k, s in enumerate(sends)]
    return {
        "audio_s": round(audio_s, 2),
        "utterances": len([u for u in prog.utterances if u[2] <= audio_s]),
        "turns_with_text": len([1 for _, tr in finals.values() if tr["transcript"].strip()]),
        "reasons": reasons,
        "from_turn_end_s": [round(x, 4) for x in from_turn_end],
        "from_speech_end_s": [round(x, 4) for x in from_speech_end],
        "merged_utterances": merged,
        "event_lag_max_s": round(max(event_lags, default=0.0), 4),
        "send_lag_max_s": round(max(lags, default=0.0), 4),
        "partials": partials,
        "partials_ideal": sum(math.floor(s / PARTIAL_INTERVAL_S) for s in segments),
        "speech_s": round(sum(segments), 2),
        "drain_s": round(drain_s, 3),
        "errors": errors,
        "texts": [tr["transcript"] for _, (_, tr) in sorted(finals.items())],
    }


# -- levels --------------------------------------------------------------------------------------------------------


class DecodeLog:
    """Wraps a loaded engine's decode methods (on the instance, in this process) to log what the server's worker ran:
    drafts (``transcribe_batch``: partials, with their batch size), turn decodes (``transcribe_utterance``:
    speculative decodes and finals) and file-path decodes (``transcribe``; inside a turn decode it is the
    repetition fallback). Only the bench's measurement: the server's behaviour is unchanged."""

    def __init__(self, engine: Any) -> None:
        self.calls: list[tuple[str, float, float, int, bool]] = []
        """(kind, start, seconds, batch size, nested in another decode)"""
        self._local = threading.local()
        for name, kind in (("transcribe_batch", "draft"), ("transcribe_utterance", "turn"), ("transcribe", "file")):
            setattr(engine, name, self._wrap(getattr(engine, name), kind))

    def _wrap(self, fn: Any, kind: str) -> Any:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            depth = getattr(self._local, "depth", 0)
            self._local.depth = depth + 1
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self._local.depth = depth
                size = len(args[0]) if kind == "draft" else 1
                self.calls.append((kind, started, time.perf_counter() - started, size, depth > 0))

        return wrapped

    def between(self, start: float, end: float) -> dict[str, Any]:
        calls = [c for c in self.calls if start <= c[1] < end]
        top = [c for c in calls if not c[4]]
        drafts = [c for c in top if c[0] == "draft"]
        turns = [c for c in top if c[0] == "turn"]
        return {
            "worker_busy_pct": round(100 * sum(c[2] for c in top) / (end - start), 1) if end > start else None,
            "draft_batches": len(drafts),
            "drafts": sum(c[3] for c in drafts),
            "mean_batch": round(sum(c[3] for c in drafts) / len(drafts), 2) if drafts else None,
            "max_batch": max((c[3] for c in drafts), default=0),
            "draft_batch_ms_mean": round(1000 * sum(c[2] for c in drafts) / len(drafts), 1) if drafts else None,
            "draft_batch_ms_max": round(1000 * max((c[2] for c in drafts), default=0.0), 1),
            "turn_decodes": len(turns),
            "turn_decode_ms_mean": round(1000 * sum(c[2] for c in turns) / len(turns), 1) if turns else None,
            "turn_decode_ms_max": round(1000 * max((c[2] for c in turns), default=0.0), 1),
            "repetition_fallbacks": sum(1 for c in calls if c[0] == "file" and c[4]),
        }


async def run_level(
    url: str, model_id: str, clips: list[Clip], n: int, args: argparse.Namespace, decodes: DecodeLog
) -> dict[str, Any]:
    programs = [program(clips, 3 * i, args.duration, args.gap) for i in range(n)]
    cpu = CpuMeter(end_load=True)
    started = time.perf_counter()
    streams = await asyncio.gather(
        *(
            run_stream(url, model_id, p, delay=i * args.stagger, chunk_s=args.chunk_ms / 1000, diarize=args.diarize)
            for i, p in enumerate(programs)
        )
    )
    worker = decodes.between(started, time.perf_counter())
    from_turn_end = [x for s in streams for x in s["from_turn_end_s"]]
    from_speech_end = [x for s in streams for x in s["from_speech_end_s"]]
    audio = sum(s["audio_s"] for s in streams)
    speech = sum(s["speech_s"] for s in streams)
    partials = sum(s["partials"] for s in streams)
    ideal = sum(s["partials_ideal"] for s in streams)
    send_lag = max(s["send_lag_max_s"] for s in streams)
    event_lag = max(s["event_lag_max_s"] for s in streams)
    errors = [e for s in streams for e in s["errors"]]
    latency = summary(from_turn_end)
    behind = send_lag > SEND_LAG_LIMIT_S or event_lag > EVENT_LAG_LIMIT_S
    passed = bool(from_turn_end) and latency["p95_ms"] < 1000 * THRESHOLD_S and not behind and not errors
    reasons: dict[str, int] = {}
    for s in streams:
        for k, v in s["reasons"].items():
            reasons[k] = reasons.get(k, 0) + v
    return {
        "n": n,
        "passed": passed,
        "behind_real_time": behind,
        "final_from_turn_end": latency,
        "final_from_speech_end": summary(from_speech_end),
        "partials_per_stream_per_s": round(partials / audio, 3) if audio else None,
        "partials_per_speech_s": round(partials / speech, 3) if speech else None,
        "partials_delivered": partials,
        "partials_ideal": ideal,
        "partials_missing": max(0, ideal - partials),
        "partials_missing_pct": round(100 * max(0, ideal - partials) / ideal, 1) if ideal else None,
        "max_send_lag_ms": round(1000 * send_lag, 1),
        "max_end_of_turn_lag_ms": round(1000 * event_lag, 1),
        "max_drain_ms": round(1000 * max(s["drain_s"] for s in streams), 1),
        "turn_end_reasons": reasons,
        "merged_utterances": sum(s["merged_utterances"] for s in streams),
        "errors": errors,
        "worker": worker,
        "cpu": cpu.result(),
        "streams": streams,
    }


def describe(level: dict[str, Any]) -> str:
    lat, sp = level["final_from_turn_end"], level["final_from_speech_end"]
    status = "pass" if level["passed"] else "FAIL"
    return (
        f"N={level['n']}: {status}; final from turn end p50 {lat.get('p50_ms', '-')} / p95 {lat.get('p95_ms', '-')} "
        f"ms (n={lat['n']}), from speech end p50 {sp.get('p50_ms', '-')} / p95 {sp.get('p95_ms', '-')} ms; partials "
        f"{level['partials_per_stream_per_s']}/s per stream ({level['partials_missing_pct']}% below ideal); max send "
        f"lag {level['max_send_lag_ms']} ms, endOfTurn lag {level['max_end_of_turn_lag_ms']} ms; worker busy "
        f"{level['worker']['worker_busy_pct']}%, mean draft batch {level['worker']['mean_batch']}; other processes "
        f"{level['cpu'].get('other_processes_cores')} cores"
        + (f"; errors {level['errors']}" if level["errors"] else "")
    )


def outcome(model_id: str, batching: bool, levels: list[dict[str, Any]]) -> dict[str, Any]:
    largest = 0
    for lv in levels:  # the largest N such that it and every level below it passed
        if not lv["passed"]:
            break
        largest = lv["n"]
    return {
        "model": model_id,
        "stream_batching": batching,
        "largest_n": largest,
        "levels_passed": [lv["n"] for lv in levels if lv["passed"]],
        "capped": bool(levels) and levels[-1]["passed"],
        "levels": levels,
    }


async def run_model(model_id: str, clips: list[Clip], args: argparse.Namespace) -> list[dict[str, Any]]:
    """One server per batching setting, both up at once; per N the settings run back to back (alternating which
    goes first), so that load from elsewhere hits both alike. A setting stops at its first failing N."""
    settings = [b == "on" for b in args.batching]
    servers, logs = {}, {}
    with contextlib.ExitStack() as stack:
        for batching in settings:
            overrides: dict[str, Any] = {
                "preload": [model_id],
                "cpu_threads": args.threads,
                "stream_batching": batching,
            }
            if args.home is not None:
                overrides["home"] = args.home
            app = create_app(Settings(**overrides))
            servers[batching] = stack.enter_context(LiveServer(app, ENDPOINT, start_timeout=120))
            logs[batching] = DecodeLog(app.state.service.engine(model_id))
        levels: dict[bool, list[dict[str, Any]]] = {b: [] for b in settings}
        for i, n in enumerate(sorted(args.levels)):
            for batching in settings if i % 2 == 0 else settings[::-1]:
                if levels[batching] and not levels[batching][-1]["passed"]:
                    continue
                level = await run_level(servers[batching].ws_url, model_id, clips, n, args, logs[batching])
                levels[batching].append(level)
                console.print(f"  {model_id}, batching {'on' if batching else 'off'}: {describe(level)}")
    return [outcome(model_id, b, levels[b]) for b in settings]


def ms(s: dict[str, Any], key: str) -> str:
    return f"{s[key]:.0f}" if key in s else "-"


def print_results(results: list[dict[str, Any]]) -> None:
    table = Table(title="Concurrent real-time streams (vad turns, partials on)")
    columns = ("model", "batch", "N", "TE->final", "SE->final", "finals", "partials", "missing", "lag", "worker", "ok")
    for col in columns:
        table.add_column(col, justify="left" if col in ("model", "batch") else "right", no_wrap=True)
    for r in results:
        for lv in r["levels"]:
            lat, sp, worker = lv["final_from_turn_end"], lv["final_from_speech_end"], lv["worker"]
            batch = "-" if worker["mean_batch"] is None else f"{worker['mean_batch']:.1f}"
            table.add_row(
                r["model"].removeprefix("whisper/"),
                "on" if r["stream_batching"] else "off",
                str(lv["n"]),
                f"{ms(lat, 'p50_ms')} / {ms(lat, 'p95_ms')}",
                f"{ms(sp, 'p50_ms')} / {ms(sp, 'p95_ms')}",
                str(lat["n"]),
                f"{lv['partials_per_stream_per_s']:.2f}",
                f"{lv['partials_missing_pct']:.0f}%",
                f"{lv['max_send_lag_ms']:.0f} / {lv['max_end_of_turn_lag_ms']:.0f}",
                f"{worker['worker_busy_pct']:.0f}% / {batch}",
                "[green]yes[/green]" if lv["passed"] else "[red]no[/red]",
            )
    console.print(table)
    console.print(
        "  TE->final: final latency from the turn end (endOfTurn position), ms p50 / p95 (the pass rule: p95 < "
        f"{1000 * THRESHOLD_S:.0f}); SE->final: from the offline last word end (includes the 700 ms pause the vad "
        "policy waits), ms p50 / p95; finals: turns measured; partials: delivered per stream per second of audio; "
        "missing: partials below the ideal of one per 500 ms of speech; lag: max ms a chunk was sent late / an "
        "endOfTurn arrived after its audio was sent; worker: share of the level's wall time the server's decode "
        "worker was busy / mean partials per batched draft decode."
    )
    table = Table(title=f"Largest N with p95 final latency (from turn end) < {THRESHOLD_S:g} s and none behind")
    for col in ("model", "stream_batching", "largest N", "note"):
        table.add_column(col)
    for r in results:
        note = "every level run passed (the cap, not the limit)" if r["capped"] else ""
        table.add_row(r["model"], str(r["stream_batching"]), str(r["largest_n"]), note)
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), help="model ids (default: %(default)s)")
    parser.add_argument("--levels", nargs="+", type=int, default=list(LEVELS), help="N values (default: %(default)s)")
    parser.add_argument(
        "--batching",
        nargs="+",
        choices=("on", "off"),
        default=["on", "off"],
        help="stream_batching settings to run (default: on off)",
    )
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of audio per stream (default: 20)")
    parser.add_argument("--gap", type=float, default=1.2, help="silence after each clip, seconds (default: 1.2)")
    parser.add_argument("--stagger", type=float, default=0.25, help="start offset between streams (default: 0.25)")
    parser.add_argument("--chunk-ms", type=int, default=100, help="chunk length (default: 100)")
    parser.add_argument("--diarize", action="store_true", help="every stream asks for speaker tags on its finals")
    parser.add_argument(
        "--reference-model",
        default="whisper/tiny.en",
        help="model of the offline decode giving each clip's last word end (default: %(default)s)",
    )
    parser.add_argument("--data", type=Path, default=DATA, help="shared data folder (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=OUT, help="JSON results file (default: %(default)s)")
    parser.add_argument("--home", type=Path, default=None, help="voxgate home (default: VOXGATE_HOME or user cache)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="cpu_threads (default: %(default)s)")
    parser.add_argument(
        "--server-logs", action="store_true", help="show the server's log (tracebacks of failed streams); default: off"
    )
    args = parser.parse_args(argv)
    if not args.server_logs:  # a failed stream still shows: its error frame is recorded and printed
        logging.getLogger("voxgate").setLevel(logging.CRITICAL)
    if min(args.levels) < 1 or args.duration <= 0:
        parser.error("--levels must be positive and --duration > 0")

    machine = machine_info(MACHINE_DISTS)
    console.print(
        f"concurrency: models {', '.join(args.models)}; stream_batching {' and '.join(args.batching)}; N in "
        f"{sorted(args.levels)} (stop at the first failing N); {args.duration:g} s of audio per stream in "
        f"{args.chunk_ms} ms chunks in real time; loadavg at start {machine['load_average_at_start']}"
    )
    modified = machine["git_modified_voxgate"]
    console.print(
        f"voxgate imported from {machine['voxgate_imported_from']} (commit {machine['git_commit']}"
        + (f", {len(modified)} uncommitted changes under voxgate/ in the checkout)" if modified else ")")
    )
    started = time.perf_counter()
    cpu = CpuMeter(end_load=True)
    reference = {"preload": [], "cpu_threads": args.threads}
    if args.home is not None:
        reference["home"] = args.home
    clips = load_clips(args.data, args.reference_model, Settings(**reference))
    console.print(
        f"  offline last word ends ({args.reference_model}) of {len(clips)} clips in "
        f"{time.perf_counter() - started:.1f} s"
    )
    results = []
    for model_id in args.models:
        results.extend(asyncio.run(run_model(model_id, clips, args)))
    print_results(results)
    load = cpu.result()
    wall = time.perf_counter() - started
    console.print(f"total wall time {wall:.0f} s; loadavg at end {load['load_average_at_end']}")
    if (said := describe_load(load)) is not None:
        console.print(said)
    report = {
        **report_head("concurrency", wall, args.data),
        "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "pass_rule": {
            "p95_final_from_turn_end_below_s": THRESHOLD_S,
            "max_send_lag_s": SEND_LAG_LIMIT_S,
            "max_end_of_turn_lag_s": EVENT_LAG_LIMIT_S,
            "no_server_errors": True,
        },
        "definitions": {
            "sent_at(t)": "client wall time at which the chunk holding the last sample before stream position t was "
            "sent; chunk k is sent at t0 + (k + 1) * chunk",
            "final_from_turn_end": "final arrival - sent_at(endOfTurn.timeSeconds), every turn with text",
            "final_from_speech_end": "final arrival - sent_at(utterance offset + offline last word end) for the "
            "first turn ending at or after it (utterances whose turn ran into the next one are left out)",
            "end_of_turn_lag": "endOfTurn arrival - sent_at(endOfTurn.timeSeconds)",
            "partials_ideal": "sum over VAD speech segments (speechStarted..speechEnded) of floor(seconds / 0.5)",
            "drain": "closeStream sent -> socket closed",
            "worker": "from wrapping the loaded engine's decode methods: worker_busy_pct = seconds spent in top-level "
            "decodes / level wall time (one scheduler worker); mean_batch = partial drafts per transcribe_batch call; "
            "repetition_fallbacks = transcribe (file path) calls made inside transcribe_utterance",
        },
        "clips": [{"clip": c.name, "last_word_end_s": c.speech_end} for c in clips],
        "machine": machine,
        "cpu": load,
        "results": results,
    }
    write_report(args.out, report)
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
