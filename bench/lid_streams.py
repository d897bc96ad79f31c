"""Language identification of a stream's turns, with and without the stream's language prior.

A stream per language of ``../shared/data/multilingual-cv`` (29 languages): its 10 clips (10 different prompts, most by
different speakers, 1.8-10 s) one after the other with 1.5 s of silence between them, sent over the WebSocket to a
voxgate server (``whisper/base``, language not given, ``vad`` turns so that each clip is one turn).
Each turn's final reports a language; a clip counts as right when its longest final has the clip's language. The
first turn of a stream has no prior to use, so the comparison is on turns 2-10; every figure is given by clip length
too. Then streams that change language: five clips of one language, five of the next (29 pairs): how soon the
turns after the change are called right. And ``multilingual/en-de-license.mp3`` (the MIT licence read in English,
then in German, switching at 29.8 s) as one stream: how many turns after the switch are still called English.

The server runs twice in this process, once with ``VOXGATE_STREAM_LANGUAGE_PRIOR`` on and once off, and the streams
alternate between them (language by language) so both meet the same load.

    python bench/lid_streams.py                  # ~8 min on 2 cores -> bench/results/lid_streams.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import DATA, LiveServer, loadavg, machine_info, read_manifest, write_report
from rich.console import Console
from rich.table import Table

from voxgate.audio.decode import decode
from voxgate.client import connect, stream_file
from voxgate.config import Settings
from voxgate.protocol.ws import EndOfTurnMessage, ResultMessage, StreamEncoding, TurnDetection
from voxgate.server.app import create_app
from voxgate.streaming.policy import EndTurnReason, TurnMode
from voxgate.types import SAMPLE_RATE

OUT = Path(__file__).resolve().parent / "results" / "lid_streams.json"
ENDPOINT = "/stt/v1/transcribe:streamBidirectional"
GAP_S = 1.5
SWITCH_CLIP = DATA / "multilingual" / "en-de-license.mp3"
SWITCH_AT_S = 29.77
"""Where the reading changes from English to German (bench/profile.py measures it from the clip's word times)."""
LENGTHS = ((0.0, 3.0, "< 3 s"), (3.0, 5.0, "3-5 s"), (5.0, 99.0, ">= 5 s"))


async def switch_finals(url: str, model: str) -> list[tuple[float, float, str | None]]:
    """(start, end, language) of every non-empty final of the en -> de clip streamed at real time."""
    out = []
    async for message in stream_file(
        url, SWITCH_CLIP, realtime=True, model_id=model, turn_detection=TurnDetection(mode=TurnMode.VAD)
    ):
        if isinstance(message, ResultMessage) and message.result.transcription.is_final:
            t = message.result.transcription
            if t.transcript.strip():
                out.append((t.start_time_seconds, t.end_time_seconds, t.language))
    return out


async def conversation(url: str, clips: list[np.ndarray], model: str) -> list[str | None]:
    """One stream, one clip per turn as a conversation has them: each clip and its pause sent (flat out), then the
    turn's final awaited before the next clip, as the next speaker would. The language of each clip's longest final."""
    said: list[str | None] = []
    gap = np.zeros(int(GAP_S * SAMPLE_RATE), dtype=np.float32)
    step = SAMPLE_RATE // 10
    options: dict[str, Any] = {"model_id": model, "turn_detection": TurnDetection(mode=TurnMode.VAD)}
    async with connect(url, None, sample_rate=SAMPLE_RATE, encoding=StreamEncoding.LINEAR16, **options) as stream:
        for audio in clips:
            piece = np.concatenate([audio, gap])
            for k in range(0, len(piece), step):
                await stream.send_float(piece[k : k + step])
            # The pause has ended the clip's turn(s) already; an endTurn now ends the next, empty turn, and its
            # final comes after theirs (finals go out in turn order): the marker that every final of the clip is in.
            await stream.end_turn()
            finals: list[tuple[float, str | None]] = []
            marker: int | None = None
            async with asyncio.timeout(60):
                while True:
                    message = await stream.receive()
                    if isinstance(message, EndOfTurnMessage) and message.end_of_turn.reason == EndTurnReason.CLIENT:
                        marker = message.end_of_turn.turn_index
                    if not isinstance(message, ResultMessage) or not message.result.transcription.is_final:
                        continue
                    t = message.result.transcription
                    if t.turn_index == marker:
                        break
                    if t.transcript.strip():
                        finals.append((t.end_time_seconds - t.start_time_seconds, t.language))
            said.append(max(finals)[1] if finals else None)
        await stream.close_stream()
    return said


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="whisper/base")
    parser.add_argument("--languages", type=int, default=None, help="only the first N languages")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    started = time.perf_counter()
    load_before = loadavg()

    rows = read_manifest(DATA / "multilingual-cv" / "MANIFEST.tsv")
    by_language: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_language.setdefault(row["language"], []).append(row)
    languages = sorted(by_language)[: args.languages]
    streams: dict[str, list[np.ndarray]] = {
        language: [decode(DATA / "multilingual-cv" / row["path"]) for row in by_language[language]]
        for language in languages
    }
    results: dict[str, dict[str, Any]] = {"on": {"clips": [], "switch": None}, "off": {"clips": [], "switch": None}}
    with contextlib.ExitStack() as stack:
        servers = {}
        for mode in ("on", "off"):
            settings = Settings(preload=[args.model], stream_language_prior=mode == "on")
            servers[mode] = stack.enter_context(LiveServer(create_app(settings), ENDPOINT, start_timeout=180))
        for i, language in enumerate(languages):
            clips = streams[language]
            order = ("on", "off") if i % 2 == 0 else ("off", "on")
            for mode in order:
                said = asyncio.run(conversation(servers[mode].ws_url, clips, args.model))
                for k, (audio, lang) in enumerate(zip(clips, said, strict=True)):
                    results[mode]["clips"].append(
                        {
                            "language": language,
                            "turn": k,
                            "seconds": round(len(audio) / SAMPLE_RATE, 2),
                            "said": lang,
                            "right": lang == language or (language == "yue" and lang == "zh"),
                        }
                    )
            print(f"{language}: done ({i + 1}/{len(languages)}), load {loadavg()}", flush=True)
        # Switches: five turns of one language, then five of the next (ar -> ca, ca -> cs, ..., zh -> ar).
        for i, language in enumerate(languages):
            following = languages[(i + 1) % len(languages)]
            clips = streams[language][:5] + streams[following][5:]
            for mode in ("on", "off") if i % 2 == 0 else ("off", "on"):
                said = asyncio.run(conversation(servers[mode].ws_url, clips, args.model))
                results[mode].setdefault("switches", []).append(
                    {
                        "from": language,
                        "to": following,
                        "said": said,
                        "right": [
                            lang == (language if k < 5 else following)
                            or (lang == "zh" and (language if k < 5 else following) == "yue")
                            for k, lang in enumerate(said)
                        ],
                    }
                )
            print(f"switch {language} -> {following}: done", flush=True)
        for mode in ("on", "off"):
            got = asyncio.run(switch_finals(servers[mode].ws_url, args.model))
            after = [(s, e, lang) for s, e, lang in got if s >= SWITCH_AT_S - 0.5]
            results[mode]["switch"] = {
                "finals_after_switch": len(after),
                "called_english_after_switch": sum(lang == "en" for _, _, lang in after),
                "languages_after_switch": [lang for _, _, lang in after],
                "languages_before_switch": [lang for s, _, lang in got if s < SWITCH_AT_S - 0.5],
            }

    def accuracy(clips: list[dict[str, Any]], lo: float = 0.0, hi: float = 99.0, later: bool = True) -> tuple[int, int]:
        chosen = [c for c in clips if lo <= c["seconds"] < hi and (c["turn"] > 0) == later]
        return sum(c["right"] for c in chosen), len(chosen)

    summary: dict[str, Any] = {}
    table = Table(title=f"Stream turns' language ID, {args.model}, {len(languages)} languages (right / turns)")
    table.add_column("turns")
    for mode in ("off", "on"):
        table.add_column(f"prior {mode}", justify="right")
    lines = [("first turn of a stream", 0.0, 99.0, False), ("turns 2-10, all", 0.0, 99.0, True)]
    lines += [(f"turns 2-10, {name}", lo, hi, True) for lo, hi, name in LENGTHS]
    for name, lo, hi, later in lines:
        cells = []
        for mode in ("off", "on"):
            right, n = accuracy(results[mode]["clips"], lo, hi, later)
            summary.setdefault(name, {})[mode] = {"right": right, "n": n, "accuracy": round(right / max(1, n), 4)}
            cells.append(f"{right}/{n} ({100 * right / max(1, n):.1f} %)")
        table.add_row(name, *cells)
    for mode in ("off", "on"):
        sw = results[mode]["switch"]
        summary.setdefault("switch: after the switch, turns still called English", {})[mode] = sw
    for k in range(5, 10):
        cells = []
        for mode in ("off", "on"):
            switches = results[mode].get("switches", [])
            right = sum(sw["right"][k] for sw in switches)
            summary.setdefault(f"switch: turn {k - 4} after the change", {})[mode] = {
                "right": right,
                "n": len(switches),
            }
            cells.append(f"{right}/{len(switches)} ({100 * right / max(1, len(switches)):.1f} %)")
        table.add_row(f"language changed: {k - 4}. turn after", *cells)
    table.add_row(
        "en -> de switch: later turns called en",
        *(f"{results[m]['switch']['called_english_after_switch']}/{results[m]['switch']['finals_after_switch']}"
          for m in ("off", "on")),
    )  # fmt: skip
    Console().print(table)
    print(f"load average before {load_before}, after {loadavg()}; {time.perf_counter() - started:.0f} s")
    write_report(
        args.out,
        {
            "benchmark": "lid_streams",
            "machine": machine_info(["voxgate", "ctranslate2", "faster-whisper"]),
            "model": args.model,
            "load_average_before": load_before,
            "load_average_after": loadavg(),
            "wall_seconds": round(time.perf_counter() - started, 1),
            "summary": summary,
            "runs": results,
        },
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
