"""Streaming latency over a real WebSocket, one real-time stream at a time (CPU).

Per model a live server (the real app, uvicorn on a loopback port in a background thread) and, per clip of
``en/MANIFEST.tsv``, in one process:

* offline first (no stream open): ``Service.transcribe_sync`` of the file, the reference for where speech starts and
  ends (first word start, last word end) and for the offline WER; then, warm, the median of ``--repeat`` in-process
  calls of ``engine.transcribe_utterance(audio, options)`` (what a stream's final costs) and of
  ``engine.transcribe(audio, options)`` (the file path);
* then the clip streamed in real time as 100 ms LINEAR16 chunks, each sent when its last sample would have been
  captured (chunk k at t0 + (k + 1) x 100 ms), with 1.5 s of digital silence appended, in these runs ("modes"):

  - ``manual``: ``endTurn`` right after the last chunk (after the silence): endTurn -> final;
  - ``manual-cut``: no silence, ``endTurn`` right after the clip's last chunk, so the final may need a decode of its
    own (a contrast; on ``--contrast-clips`` clips spread over the set);
  - ``semantic`` and ``vad`` (default knobs): end of speech -> final, where "end of speech" is the wall-clock time
    the client sent the chunk holding the reference end of speech (offline last word end, or the server's
    ``speechEnded.timeSeconds``: both are reported). Once the turn has ended after the speech and its final is in,
    the rest of the silence is not sent.
  - ``vad-speakers``: ``vad`` with ``diarizationConfig`` on, interleaved with ``vad`` clip by clip: what holding
    each final for its turn's speaker embedding costs.

  Every run also gives speech start -> first partial (from the chunk holding the offline first word start, or the
  server's ``speechStarted.timeSeconds``).

Times are measured by the client (``time.perf_counter``); the server runs in the same process.

    python bench/latency.py                              # both packaged models, writes bench/results/latency.json
    python bench/latency.py --models whisper/tiny.en --clips 5 --modes manual vad
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import logging
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import jiwer
import numpy as np
import websockets
from common import (
    DATA,
    CpuMeter,
    LiveServer,
    describe_load,
    loadavg,
    machine_info,
    read_manifest,
    report_head,
    word_counts,
    write_report,
)
from rich.console import Console
from rich.table import Table
from whisper_normalizer.english import EnglishTextNormalizer

from voxgate.audio.decode import decode
from voxgate.audio.pcm import encode_linear16
from voxgate.config import Settings
from voxgate.server.app import create_app
from voxgate.service import Service
from voxgate.types import SAMPLE_RATE, Audio, TranscriptionOptions

MACHINE_DISTS = ("voxgate", "faster-whisper", "ctranslate2", "onnxruntime", "uvicorn", "websockets", "jiwer")
OUT = Path(__file__).resolve().parent / "results" / "latency.json"
MODELS = ("whisper/tiny.en", "whisper/base")
MODES = ("manual", "manual-cut", "semantic", "semantic-late", "semantic-eager", "vad", "vad-speakers")
"""``vad-speakers``: ``vad`` with diarization on (each final waits for its turn's speaker embedding);
``semantic-late``: ``semantic`` without the early turn check (``earlyMs: 0``), the turn model first asked at the
pause."""
ENDPOINT = "/stt/v1/transcribe:streamBidirectional"
TARGET_RATIO = 0.5
"""endTurn -> final over the offline decode time of the same utterance."""
TARGET_WER_RATIO = 1.1
"""Streaming corpus WER over offline corpus WER."""

console = Console(highlight=False, width=None if sys.stdout.isatty() else 120)


# -- machine and files ---------------------------------------------------------------------------------------------


# -- numbers -------------------------------------------------------------------------------------------------------


def summary(values: list[float | None]) -> dict[str, Any]:
    """p50 / p95 / mean / min / max in milliseconds of values in seconds (None values are left out, and counted)."""
    xs = [v for v in values if v is not None]
    out: dict[str, Any] = {"n": len(xs), "missing": len(values) - len(xs)}
    if xs:
        arr = np.asarray(xs) * 1000
        out.update(
            p50_ms=round(float(np.percentile(arr, 50)), 1),
            p95_ms=round(float(np.percentile(arr, 95)), 1),
            mean_ms=round(float(arr.mean()), 1),
            min_ms=round(float(arr.min()), 1),
            max_ms=round(float(arr.max()), 1),
        )
    return out


def wer_counts(references: list[str], hypotheses: list[str]) -> dict[str, Any]:
    """Corpus WER of normalised texts (jiwer; an empty hypothesis counts as all deletions)."""
    out = jiwer.process_words(references, [h if h.strip() else "<empty>" for h in hypotheses])
    return word_counts(out, digits=4, hits=False)


def r3(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


# -- one clip ------------------------------------------------------------------------------------------------------


@dataclass
class Clip:
    name: str
    path: Path
    reference: str
    audio: Audio
    duration: float
    offline: dict[str, Any] = field(default_factory=dict)

    @property
    def speech_start(self) -> float:
        return float(self.offline["first_word_start_s"])

    @property
    def speech_end(self) -> float:
        return float(self.offline["last_word_end_s"])


def load_clips(data: Path) -> list[Clip]:
    clips = []
    for row in read_manifest(data / "en" / "MANIFEST.tsv"):
        path = data / "en" / row["path"]
        audio = decode(path)
        clips.append(Clip(row["path"], path, row["reference"], audio, round(len(audio) / SAMPLE_RATE, 3)))
    return clips


def timed_median(fn: Callable[[], Any], repeat: int) -> tuple[float, list[float], Any]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), [round(t, 4) for t in times], result


def offline(service: Service, model_id: str, clips: list[Clip], options: TranscriptionOptions, repeat: int) -> None:
    """Reference times and texts (transcribe_sync), then warm decode timings of each clip, all in this process."""
    engine = service.engine(model_id)
    shortest = min(clips, key=lambda c: c.duration).audio
    engine.transcribe_utterance(shortest, options)  # warm-up
    engine.transcribe(shortest, options)
    for clip in clips:
        started = time.perf_counter()
        transcript = service.transcribe_sync(clip.path, options, model_id)
        sync_s = time.perf_counter() - started
        words = transcript.words
        utt_s, utt_runs, utt = timed_median(lambda c=clip: engine.transcribe_utterance(c.audio, options), repeat)
        file_s, file_runs, _ = timed_median(lambda c=clip: engine.transcribe(c.audio, options), repeat)
        clip.offline = {
            "text": transcript.text,
            "language": transcript.language,
            "first_word_start_s": words[0].start if words else 0.0,
            "last_word_end_s": words[-1].end if words else clip.duration,
            "transcribe_sync_s": round(sync_s, 4),
            "utterance_s": round(utt_s, 4),
            "utterance_runs_s": utt_runs,
            "utterance_text": utt.text,
            "transcribe_s": round(file_s, 4),
            "transcribe_runs_s": file_runs,
        }


# -- one stream ----------------------------------------------------------------------------------------------------


@dataclass
class Received:
    at: float
    message: dict[str, Any]


async def stream_clip(
    url: str,
    model_id: str,
    audio: Audio,
    *,
    mode: str,
    end_turn: bool,
    chunk_s: float,
    stop_after: float | None = None,
    diarize: bool = False,
    eager: float | None = None,
    early_ms: int | None = None,
) -> dict[str, Any]:
    """Stream ``audio`` in real time; return what was sent when and what arrived when.

    ``stop_after``: stop sending once this much audio is out and a turn that ended at or after it has its final.
    """
    samples = round(chunk_s * SAMPLE_RATE)
    pcm = encode_linear16(audio)
    chunks = [pcm[i : i + 2 * samples] for i in range(0, len(pcm), 2 * samples)]
    config = {
        "transcribeConfig": {
            "modelId": model_id,
            "audioEncoding": "LINEAR16",
            "sampleRateHertz": SAMPLE_RATE,
            "turnDetection": {
                "mode": mode,
                **({"eagerThreshold": eager} if eager is not None else {}),
                **({"earlyMs": early_ms} if early_ms is not None else {}),
            },
            "enablePartials": True,
            **({"diarizationConfig": {"enableSpeakerDiarization": True}} if diarize else {}),
        }
    }
    received: list[Received] = []
    errors: list[str] = []
    ended_after: set[int] = set()  # turns that ended at or after stop_after
    done_early = asyncio.Event()
    sends: list[float] = []
    end_turn_at = close_at = None
    async with websockets.connect(url, max_size=None, open_timeout=60) as ws:
        await ws.send(json.dumps(config))

        async def receive() -> None:
            try:
                async for raw in ws:
                    take(time.perf_counter(), json.loads(raw))
            except websockets.ConnectionClosed as exc:  # an error frame came first: the server closed with its code
                errors.append(f"closed {exc.rcvd.code if exc.rcvd else None}")

        def take(at: float, message: dict[str, Any]) -> None:
            received.append(Received(at, message))
            if "error" in message:
                errors.append(f"{message['error']['code']}: {message['error']['message']}")
            if stop_after is None:
                return
            if "endOfTurn" in message and message["endOfTurn"]["timeSeconds"] >= stop_after:
                ended_after.add(message["endOfTurn"]["turnIndex"])
            result = message.get("result", {}).get("transcription")
            if result and result["isFinal"] and result["turnIndex"] in ended_after:
                done_early.set()

        receiver = asyncio.create_task(receive())
        t0 = time.perf_counter()
        for k, chunk in enumerate(chunks):
            delay = t0 + (k + 1) * chunk_s - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if receiver.done():
                break
            try:
                await ws.send(json.dumps({"audioChunk": {"content": base64.b64encode(chunk).decode("ascii")}}))
            except websockets.ConnectionClosed:
                break  # the receiver has the reason
            sends.append(time.perf_counter())
            if done_early.is_set():
                break
        if end_turn and not receiver.done():
            await ws.send('{"endTurn": {}}')
            end_turn_at = time.perf_counter()
        if not receiver.done():
            await ws.send('{"closeStream": {}}')
            close_at = time.perf_counter()
        await asyncio.wait_for(receiver, timeout=120)
        closed_at = time.perf_counter()
    return {
        "t0": t0,
        "chunk_s": chunk_s,
        "sends": sends,
        "chunks_total": len(chunks),
        "received": received,
        "errors": errors,
        "end_turn_at": end_turn_at,
        "close_at": close_at,
        "closed_at": closed_at,
        "send_lag_max_s": max((s - (t0 + (k + 1) * chunk_s) for k, s in enumerate(sends)), default=0.0),
    }


def analyse(raw: dict[str, Any], clip: Clip, mode: str) -> dict[str, Any]:
    sends, chunk_s = raw["sends"], raw["chunk_s"]

    def sent_at(position: float, *, end: bool = False) -> float:
        """Wall time the client sent the chunk holding the sample at ``position`` seconds (``end``: the chunk holding
        the last sample before ``position``, for the end of something)."""
        k = math.ceil(position / chunk_s - 1e-6) - 1 if end else math.floor(position / chunk_s + 1e-6)
        return float(sends[min(max(0, k), len(sends) - 1)])

    finals, partials, started, ended, turns = [], [], [], [], []
    eager: list[tuple[float, dict[str, Any]]] = []
    resumed: list[tuple[float, dict[str, Any]]] = []
    for r in raw["received"]:
        m = r.message
        result = m.get("result", {})  # the reference's shape: transcription, speechStarted/Stopped, usage in "result"
        if "transcription" in result:
            tr = result["transcription"]
            (finals if tr["isFinal"] else partials).append((r.at, tr))
        elif "speechStarted" in result:
            started.append((r.at, result["speechStarted"]))
        elif "speechStopped" in result:
            ended.append((r.at, result["speechStopped"]))
        elif "endOfTurn" in m:
            turns.append((r.at, m["endOfTurn"]))
        elif "eagerEndOfTurn" in m:
            eager.append((r.at, m["eagerEndOfTurn"]))
        elif "turnResumed" in m:
            resumed.append((r.at, m["turnResumed"]))
    spoken = [(at, tr) for at, tr in finals if tr["transcript"].strip()]
    out: dict[str, Any] = {
        "clip": clip.name,
        "mode": mode,
        "audio_sent_s": round(len(sends) * chunk_s, 3),
        "send_lag_max_ms": round(1000 * raw["send_lag_max_s"], 1),
        "text": " ".join(tr["transcript"].strip() for _, tr in spoken),
        "finals": [
            {
                "turn": tr["turnIndex"],
                "at_s": r3(at - raw["t0"]),
                "text": tr["transcript"],
                "start_s": tr["startTimeSeconds"],
                "end_s": tr["endTimeSeconds"],
            }
            for at, tr in finals
        ],
        "turn_ends": [
            {"turn": e["turnIndex"], "time_s": e["timeSeconds"], "reason": e["reason"], "at_s": r3(at - raw["t0"])}
            for at, e in turns
        ],
        "speech_started_s": [e["timeSeconds"] for _, e in started],
        "speech_ended_s": [e["timeSeconds"] for _, e in ended],
        "partials": len(partials),
        "turns_with_text": len(spoken),
        "split": len(spoken) > 1,
        "errors": raw["errors"],
    }
    # speech start -> first partial
    if partials:
        first = partials[0][0]
        out["first_partial_from_word_s"] = r3(first - sent_at(clip.speech_start))
        out["first_partial_from_vad_s"] = r3(first - sent_at(started[0][1]["timeSeconds"])) if started else None
    else:
        out["first_partial_from_word_s"] = out["first_partial_from_vad_s"] = None
    if mode.startswith("manual"):
        t_end = raw["end_turn_at"] if raw["end_turn_at"] is not None else float("inf")
        after = [(at, tr) for at, tr in finals if at >= t_end]
        out["end_turn_to_final_s"] = r3(after[0][0] - t_end) if after else None
        # Speculation was possible if speech had ended (speechEnded arrived, no new start since) before endTurn.
        last = max(
            [(at, "end") for at, _ in ended if at < t_end] + [(at, "start") for at, _ in started if at < t_end],
            default=(0.0, "none"),
        )
        out["speech_ended_before_end_turn"] = last[1] == "end"
        return out
    # semantic / vad: the final of the turn that held the end of speech
    if not spoken:
        out.update(eos_to_final_word_s=None, eos_to_final_vad_s=None, reason=None)
        return out
    at, last = spoken[-1]
    turn = last["turnIndex"]
    end_event = next(((t, e) for t, e in turns if e["turnIndex"] == turn), None)
    vad_end = [e["timeSeconds"] for _, e in ended if e["turnIndex"] == turn]
    out["eos_to_final_word_s"] = r3(at - sent_at(clip.speech_end, end=True))
    out["eos_to_final_vad_s"] = r3(at - sent_at(vad_end[-1], end=True)) if vad_end else None
    out["reason"] = end_event[1]["reason"] if end_event else None
    if mode.endswith("-eager"):
        # Eager ends of turn: each one a turnResumed takes back is a false start a voice agent would have paid for.
        mine = [(t, e) for t, e in eager if e["turnIndex"] == turn]
        kept = mine[-1] if mine and not [t for t, e in resumed if e["turnIndex"] == turn and t > mine[-1][0]] else None
        out["eager_events"] = len(eager)
        out["eager_taken_back"] = len(resumed)
        out["eos_to_eager_word_s"] = r3(kept[0] - sent_at(clip.speech_end, end=True)) if kept else None
        out["eager_matches_final"] = kept[1]["transcript"] == last["transcript"] if kept else None
    if end_event is not None:
        out["turn_end_time_s"] = end_event[1]["timeSeconds"]
        out["turn_end_to_final_s"] = r3(at - end_event[0])
        out["turn_end_event_lag_s"] = r3(end_event[0] - sent_at(end_event[1]["timeSeconds"], end=True))
    return out


# -- one model -----------------------------------------------------------------------------------------------------


def spread(clips: list[Clip], n: int) -> list[Clip]:
    """``n`` clips spread evenly over the list (all of them when n >= len)."""
    if n >= len(clips):
        return list(clips)
    return [clips[i * len(clips) // n] for i in range(n)]


def headline(row: dict[str, Any]) -> str:
    """The run's main number, for the progress line."""
    key = "end_turn_to_final_s" if row["mode"].startswith("manual") else "eos_to_final_word_s"
    value = row.get(key)
    return f"{row['mode']} {'-' if value is None else round(1000 * value)}"


async def stream_all(
    url: str, model_id: str, clips: list[Clip], args: argparse.Namespace
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, Any]]:
    """Every clip in every mode, the modes interleaved per clip so that load from elsewhere hits them alike."""
    silence = np.zeros(round(args.silence * SAMPLE_RATE), dtype=np.float32)
    runs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in args.modes}
    contrast = {c.name for c in spread(clips, args.contrast_clips)}
    started = time.perf_counter()
    meter = CpuMeter(end_load=True)
    for i, clip in enumerate(clips):
        done = []
        for mode in args.modes:
            if mode == "manual-cut" and clip.name not in contrast:
                continue
            audio = clip.audio if mode == "manual-cut" else np.concatenate([clip.audio, silence])
            server_mode = "manual" if mode.startswith("manual") else mode.split("-")[0]
            run_meter = CpuMeter(end_load=True)
            raw = await stream_clip(
                url,
                model_id,
                audio,
                mode=server_mode,
                end_turn=server_mode == "manual",
                chunk_s=args.chunk_ms / 1000,
                stop_after=None if server_mode == "manual" else clip.speech_end,
                diarize=mode.endswith("-speakers"),
                eager=args.eager if mode.endswith("-eager") else None,
                early_ms=0 if mode.endswith("-late") else None,
            )
            row = {**analyse(raw, clip, mode), "cpu": run_meter.result()}
            runs[mode].append(row)
            done.append(headline(row))
        console.print(
            f"  {model_id} {i + 1:>2}/{len(clips)} {clip.name:<14} ms: {', '.join(done)} (loadavg {loadavg()})"
        )
    cpu = meter.result()
    console.print(f"  {model_id}: streamed for {time.perf_counter() - started:.1f} s ({busy(cpu)})")
    return runs, cpu


def busy(load: dict[str, Any]) -> str:
    other = load.get("other_processes_cores")
    return f"other processes used {other} cores, loadavg {load['load_average_at_end']}"


def summarise_model(model_id: str, clips: list[Clip], runs: dict[str, list], normalizer: Any) -> dict[str, Any]:
    by_clip = {c.name: c for c in clips}
    modes: dict[str, Any] = {}
    for mode, rows in runs.items():
        s: dict[str, Any] = {
            "clips": len(rows),
            "first_partial_from_word_start": summary([r["first_partial_from_word_s"] for r in rows]),
            "first_partial_from_vad_start": summary([r["first_partial_from_vad_s"] for r in rows]),
            "split_clips": sum(r["split"] for r in rows),
            "max_send_lag_ms": max(r["send_lag_max_ms"] for r in rows),
            "server_errors": [f"{r['clip']}: {'; '.join(r['errors'])}" for r in rows if r["errors"]],
            "other_processes_cores_median": round(
                statistics.median(r["cpu"].get("other_processes_cores", 0.0) for r in rows), 2
            ),
            "own_cpu_s": round(sum(r["cpu"]["own_cpu_s"] for r in rows), 1),
        }
        if mode.startswith("manual"):
            s["end_turn_to_final"] = summary([r["end_turn_to_final_s"] for r in rows])
            s["speech_ended_before_end_turn"] = sum(r["speech_ended_before_end_turn"] for r in rows)
            for key, field_ in (("utterance", "utterance_s"), ("transcribe", "transcribe_s")):
                ratios = [
                    r["end_turn_to_final_s"] / by_clip[r["clip"]].offline[field_]
                    for r in rows
                    if r["end_turn_to_final_s"] is not None
                ]
                s[f"ratio_to_{key}_median"] = round(statistics.median(ratios), 4) if ratios else None
        else:
            s["eos_to_final_word"] = summary([r["eos_to_final_word_s"] for r in rows])
            s["eos_to_final_vad"] = summary([r["eos_to_final_vad_s"] for r in rows])
            ended = [r for r in rows if r["reason"] in ("semantic", "silence")]
            s["eos_to_final_word_server_ended"] = summary([r["eos_to_final_word_s"] for r in ended])
            s["turn_end_to_final"] = summary([r.get("turn_end_to_final_s") for r in rows])
            reasons: dict[str, int] = {}
            for r in rows:
                reasons[str(r["reason"])] = reasons.get(str(r["reason"]), 0) + 1
            s["reasons"] = reasons
            if mode.endswith("-eager"):
                s["eos_to_eager_word"] = summary([r["eos_to_eager_word_s"] for r in rows])
                sent = sum(r["eager_events"] for r in rows)
                s["eager_events"] = sent
                s["eager_taken_back"] = sum(r["eager_taken_back"] for r in rows)
                s["eager_taken_back_rate"] = round(s["eager_taken_back"] / sent, 3) if sent else None
                s["eager_matches_final"] = sum(bool(r["eager_matches_final"]) for r in rows)
        refs = [normalizer(by_clip[r["clip"]].reference) for r in rows]
        s["wer_stream"] = wer_counts(refs, [normalizer(r["text"]) for r in rows])
        s["wer_offline"] = wer_counts(refs, [normalizer(by_clip[r["clip"]].offline["text"]) for r in rows])
        s["wer_utterance"] = wer_counts(refs, [normalizer(by_clip[r["clip"]].offline["utterance_text"]) for r in rows])
        off = s["wer_offline"]["errors"]
        s["wer_ratio"] = round(s["wer_stream"]["errors"] / off, 3) if off else None
        modes[mode] = s
    return {
        "model": model_id,
        "offline": {
            "utterance_median_s": round(statistics.median(c.offline["utterance_s"] for c in clips), 4),
            "transcribe_median_s": round(statistics.median(c.offline["transcribe_s"] for c in clips), 4),
        },
        "modes": modes,
        "clips": [{"clip": c.name, "duration_s": c.duration, "reference": c.reference, **c.offline} for c in clips],
        "runs": runs,
    }


def ms(s: dict[str, Any], key: str) -> str:
    return f"{s[key]:.0f}" if key in s else "-"


def print_model(result: dict[str, Any]) -> None:
    modes = result["modes"]
    table = Table(title=f"{result['model']}: streaming latency (ms, measured by the client, real-time streams)")
    for col in ("what", "mode", "n", "p50", "p95", "mean", "max"):
        table.add_column(col, justify="left" if col in ("what", "mode") else "right", overflow="fold")
    rows = []
    for mode in ("manual", "manual-cut"):
        if mode in modes:
            rows.append(("endTurn -> final", mode, modes[mode]["end_turn_to_final"]))
    for mode in ("semantic", "semantic-late", "semantic-eager", "vad", "vad-speakers"):
        if mode in modes:
            if "eos_to_eager_word" in modes[mode]:
                eager = modes[mode]["eos_to_eager_word"]
                rows.append(("end of speech (last word) -> eagerEndOfTurn kept", mode, eager))
            rows.append(("end of speech (last word) -> final", mode, modes[mode]["eos_to_final_word"]))
            rows.append(("end of speech (VAD speechEnded) -> final", mode, modes[mode]["eos_to_final_vad"]))
            ended = modes[mode]["eos_to_final_word_server_ended"]
            rows.append(("  same, turns the server ended (word ref.)", mode, ended))
            rows.append(("turn end (endOfTurn arrival) -> final", mode, modes[mode]["turn_end_to_final"]))
    for mode, s in modes.items():
        rows.append(("speech start (first word) -> 1st partial", mode, s["first_partial_from_word_start"]))
        rows.append(("speech start (VAD speechStarted) -> 1st partial", mode, s["first_partial_from_vad_start"]))
    for what, mode, s in rows:
        table.add_row(what, mode, str(s["n"]), ms(s, "p50_ms"), ms(s, "p95_ms"), ms(s, "mean_ms"), ms(s, "max_ms"))
    console.print(table)

    off = result["offline"]
    console.print(
        f"  offline decode of the same clips, in-process, warm (median over clips of the median of the repeats): "
        f"transcribe_utterance {1000 * off['utterance_median_s']:.0f} ms, transcribe (file path) "
        f"{1000 * off['transcribe_median_s']:.0f} ms"
    )
    for mode in ("manual", "manual-cut"):
        if mode in modes:
            s = modes[mode]
            ratio = s["ratio_to_utterance_median"]
            colour = "green" if ratio is not None and ratio <= TARGET_RATIO else "red"
            console.print(
                f"  {mode}: endTurn->final / offline decode, median over clips: [{colour}]{ratio} vs "
                f"transcribe_utterance[/{colour}], {s['ratio_to_transcribe_median']} vs transcribe (target <= "
                f"{TARGET_RATIO}); speech had ended (speechEnded in) before endTurn in "
                f"{s['speech_ended_before_end_turn']}/{s['clips']} runs"
            )
    console.print(
        "  CPU while streaming, per mode: "
        + "; ".join(
            f"{mode} {s['own_cpu_s']} CPU-s in this process, other processes {s['other_processes_cores_median']} "
            "cores (median over runs)"
            for mode, s in modes.items()
        )
    )
    for mode, s in modes.items():
        for error in s["server_errors"]:
            console.print(f"  [red]{mode}: server error in the stream of {error}[/red]")
    for mode in ("semantic", "vad", "vad-speakers"):
        if mode in modes:
            s = modes[mode]
            console.print(
                f"  {mode}: turns ended by {s['reasons']}; clips split into >1 turn: {s['split_clips']}/{s['clips']}"
            )

    table = Table(title=f"{result['model']}: corpus WER % (Whisper EnglishTextNormalizer + jiwer), same clips")
    for col in ("mode", "clips", "words", "stream", "offline (transcribe_sync)", "utterance", "errors stream/off."):
        table.add_column(col, justify="left" if col == "mode" else "right")
    for mode, s in modes.items():
        st, of, ut = s["wer_stream"], s["wer_offline"], s["wer_utterance"]
        ok = st["errors"] <= TARGET_WER_RATIO * of["errors"]
        colour = "green" if ok else "red"
        table.add_row(
            mode,
            str(s["clips"]),
            str(st["reference_words"]),
            f"[{colour}]{100 * st['wer']:.1f}[/{colour}]",
            f"{100 * of['wer']:.1f}",
            f"{100 * ut['wer']:.1f}",
            f"{st['errors']}/{of['errors']}",
        )
    console.print(table)
    console.print(f"  target: streaming WER <= {TARGET_WER_RATIO} x offline WER")


async def run_model(model_id: str, args: argparse.Namespace, normalizer: Any) -> dict[str, Any]:
    overrides: dict[str, Any] = {"preload": [model_id], "cpu_threads": args.threads}
    if args.home is not None:
        overrides["home"] = args.home
    settings = Settings(**overrides)
    clips = load_clips(args.data)[: args.clips]
    options = TranscriptionOptions()
    app = create_app(settings)
    with LiveServer(app, ENDPOINT, start_timeout=120) as server:
        started = time.perf_counter()
        meter = CpuMeter(end_load=True)
        await asyncio.to_thread(offline, app.state.service, model_id, clips, options, args.repeat)
        offline_cpu = meter.result()
        console.print(
            f"  {model_id}: offline reference and decode timings for {len(clips)} clips in "
            f"{time.perf_counter() - started:.1f} s ({busy(offline_cpu)})"
        )
        runs, cpu = await stream_all(server.ws_url, model_id, clips, args)
    result = summarise_model(model_id, clips, runs, normalizer)
    result["cpu"] = {"offline": offline_cpu, "streaming": cpu}
    result["settings"] = {"cpu_threads": settings.cpu_threads, "stream_batching": settings.stream_batching}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), help="model ids (default: %(default)s)")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES, help="runs (default: all)")
    parser.add_argument("--clips", type=int, default=13, help="first N clips of en/MANIFEST.tsv (default: all 13)")
    parser.add_argument(
        "--contrast-clips", type=int, default=3, help="clips for the manual-cut contrast, spread over the set (3)"
    )
    parser.add_argument("--silence", type=float, default=1.5, help="trailing silence in seconds (default: 1.5)")
    parser.add_argument(
        "--eager", type=float, default=0.2, help="eagerThreshold of the semantic-eager mode (default: %(default)s)"
    )
    parser.add_argument("--chunk-ms", type=int, default=100, help="chunk length (default: 100)")
    parser.add_argument("--repeat", type=int, default=3, help="timed offline decodes per clip and path (default: 3)")
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
    if args.repeat < 1 or args.clips < 1 or args.contrast_clips < 1:
        parser.error("--repeat, --clips and --contrast-clips must be at least 1")

    machine = machine_info(MACHINE_DISTS)
    console.print(
        f"latency: models {', '.join(args.models)}; modes {', '.join(args.modes)}; {args.clips} clips "
        f"(manual-cut on {min(args.contrast_clips, args.clips)}); {args.chunk_ms} ms chunks in real time, "
        f"{args.silence} s trailing silence; loadavg at start {machine['load_average_at_start']}"
    )
    normalizer = EnglishTextNormalizer()
    modified = machine["git_modified_voxgate"]
    console.print(
        f"voxgate imported from {machine['voxgate_imported_from']} (commit {machine['git_commit']}"
        + (f", {len(modified)} uncommitted changes under voxgate/ in the checkout)" if modified else ")")
    )
    started = time.perf_counter()
    cpu = CpuMeter(end_load=True)
    results = []
    for model_id in args.models:
        result = asyncio.run(run_model(model_id, args, normalizer))
        results.append(result)
        print_model(result)
    load = cpu.result()
    wall = time.perf_counter() - started
    console.print(f"total wall time {wall:.0f} s; loadavg at end {load['load_average_at_end']}")
    if (said := describe_load(load)) is not None:
        console.print(said)
    report = {
        **report_head("latency", wall, args.data),
        "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "options": asdict(TranscriptionOptions()),
        "definitions": {
            "sent_at(t)": "client wall time at which the chunk holding stream position t was sent (for an end time: "
            "the chunk holding the last sample before t); chunk k is sent at t0 + (k + 1) * chunk (when its last "
            "sample would have been captured)",
            "end_turn_to_final": "manual modes: from sending endTurn to the first final arriving after it",
            "eos_to_final_word": "semantic/vad: final of the last turn with text minus sent_at(offline last word end)",
            "eos_to_final_vad": "same, minus sent_at(the turn's last speechEnded.timeSeconds)",
            "turn_end_to_final": "same final minus the arrival of its endOfTurn message",
            "first_partial_from_word_start": "first partial's arrival minus sent_at(offline first word start)",
            "first_partial_from_vad_start": "first partial's arrival minus sent_at(first speechStarted.timeSeconds)",
            "ratio_to_utterance_median": "median over clips of end_turn_to_final / warm transcribe_utterance time",
            "ratio_to_transcribe_median": "median over clips of end_turn_to_final / warm transcribe time",
        },
        "targets": {"end_turn_ratio": TARGET_RATIO, "wer_ratio": TARGET_WER_RATIO},
        "machine": machine,
        "cpu": load,
        "models": results,
    }
    write_report(args.out, report)
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
