"""What voxgate's REST path costs on top of calling faster-whisper directly, and how fast both are (CPU).

Per model, in one process and one run:

* direct: ``faster_whisper.decode_audio`` + ``BatchedInferencePipeline.transcribe`` with exactly the arguments
  voxgate's ``WhisperEngine`` passes for a request that sets nothing, consuming the segments generator;
* rest: the real voxgate app served by uvicorn on a loopback port (background thread), each file POSTed to
  ``/stt/v1/transcribe`` as the reference JSON body (base64) with httpx; wall time measured by the client, so it
  includes base64 encoding, JSON, HTTP, validation, voxgate's decoder, the scheduler and the response.

Models load first (not timed into the comparison), each path is warmed up once, then every file runs ``--repeat``
times with the paths interleaved (direct, rest, direct, rest, ...) so drift on the machine hits both alike.

    python bench/speed.py                        # both packaged models, 3 repeats, writes bench/results/speed.json
    python bench/speed.py --models whisper/tiny.en --repeat 5 --no-long
"""

from __future__ import annotations

import argparse
import base64
import os
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from common import DATA, CpuMeter, LiveServer, describe_load, machine_info, read_manifest, report_head, write_report
from fastapi import FastAPI
from faster_whisper import BatchedInferencePipeline, WhisperModel, decode_audio
from rich.console import Console
from rich.table import Table

from voxgate.config import Settings
from voxgate.models.catalog import resolve
from voxgate.models.materialize import materialize
from voxgate.server.app import create_app
from voxgate.types import SAMPLE_RATE, TranscriptionOptions

MACHINE_DISTS = ("voxgate", "faster-whisper", "ctranslate2", "onnxruntime", "av", "fastapi", "uvicorn", "httpx")
MACHINE_KEYS = (
    "hostname",
    "platform",
    "python",
    "cpu_count",
    "cpu_affinity",
    "cpu_model",
    "load_average_at_start",
    "git_commit",
    "versions",
)
OUT = Path(__file__).resolve().parent / "results" / "speed.json"
MODELS = ("whisper/tiny.en", "whisper/base")
LONG_FILE = "multilingual/en-de-license.mp3"
TARGET_RATIO = 1.10

console = Console(highlight=False, width=None if sys.stdout.isatty() else 140)


# -- the files ------------------------------------------------------------------------------------------------------


def bench_files(data: Path, long: bool) -> list[dict[str, Any]]:
    files = [{"path": f"en/{row['path']}", "kind": "short"} for row in read_manifest(data / "en" / "MANIFEST.tsv")]
    if long:
        files.append({"path": LONG_FILE, "kind": "long"})
    for f in files:
        f["duration_s"] = round(len(decode_audio(str(data / f["path"]))) / SAMPLE_RATE, 3)
    return files


# -- the two paths --------------------------------------------------------------------------------------------------


class Direct:
    """faster-whisper as voxgate's WhisperEngine configures it, without voxgate."""

    def __init__(self, model_id: str, settings: Settings) -> None:
        self.model_dir = materialize(resolve(model_id, settings.default_model), settings.home)
        self.model = WhisperModel(
            str(self.model_dir),
            device=settings.device,
            compute_type=settings.compute_type,
            cpu_threads=settings.cpu_threads,
            local_files_only=True,
        )
        self.pipeline = BatchedInferencePipeline(self.model)
        self.batch_size = max(1, settings.batch_size)
        # What a request that sets nothing gets (voxgate.protocol.options.options_of -> TranscriptionOptions()).
        self.options = TranscriptionOptions()
        # WhisperEngine: detect = options.language is None and the model is multilingual.
        self.multilingual = self.options.language is None and bool(self.model.model.is_multilingual)

    def arguments(self) -> dict[str, Any]:
        o = self.options
        return {
            "language": o.language,
            "task": o.task,
            "beam_size": o.beam_size,
            "temperature": o.temperature,
            "initial_prompt": o.prompt or None,
            "hotwords": None,
            "word_timestamps": o.word_timestamps,
            "vad_filter": o.vad_filter,
            "clip_timestamps": None,
            "batch_size": self.batch_size,
            "multilingual": self.multilingual,
        }

    def __call__(self, path: Path) -> str:
        audio = decode_audio(str(path))
        segments, _info = self.pipeline.transcribe(audio, **self.arguments())
        return " ".join(t for s in segments if (t := s.text.strip()))

    def close(self) -> None:
        del self.pipeline
        del self.model


class Rest:
    """One file through ``POST /stt/v1/transcribe`` (JSON, base64), timed by the client."""

    def __init__(self, client: httpx.Client, model_id: str, app: FastAPI) -> None:
        self.client = client
        self.model_id = model_id
        self.registry = app.state.service.metrics.registry
        self.last_inference: float | None = None
        """Seconds the server spent in engine calls during the last request (voxgate's own metric)."""

    def _inference_total(self) -> float | None:
        value = self.registry.get_sample_value("voxgate_inference_seconds_sum", {"model": self.model_id})
        return None if value is None else float(value)

    def __call__(self, path: Path) -> str:
        before = self._inference_total() or 0.0
        content = base64.b64encode(path.read_bytes()).decode("ascii")
        body = {"transcribeConfig": {"modelId": self.model_id}, "audioData": {"content": content}}
        response = self.client.post("/stt/v1/transcribe", json=body)
        if response.status_code != 200:
            raise RuntimeError(f"{path.name}: HTTP {response.status_code}: {response.text[:500]}")
        text: str = response.json()["transcription"]["transcript"]
        after = self._inference_total()
        self.last_inference = None if after is None else after - before
        return text


def process_cpu() -> float:
    """CPU seconds used so far by this process, all threads (uvicorn, the scheduler, CTranslate2's pool)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(fn: Any, path: Path) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of this process, transcript) for one call."""
    cpu = process_cpu()
    started = time.perf_counter()
    text = fn(path)
    return time.perf_counter() - started, process_cpu() - cpu, text


# -- numbers --------------------------------------------------------------------------------------------------------


def summarise(files: list[dict[str, Any]], repeat: int) -> dict[str, Any]:
    audio = sum(f["duration_s"] for f in files) * repeat
    direct = sum(sum(f["direct_s"]) for f in files)
    rest = sum(sum(f["rest_s"]) for f in files)
    ratios = [f["ratio_median"] for f in files]
    # Each rest run against the direct run of the same file right beside it: drift cancels within a pair.
    paired = [s / d for f in files for d, s in zip(f["direct_s"], f["rest_s"], strict=True)]
    direct_cpu = sum(sum(f["direct_cpu_s"]) for f in files)
    rest_cpu = sum(sum(f["rest_cpu_s"]) for f in files)
    overheads = [f["overhead_ms_median"] for f in files]
    out = {
        "files": len(files),
        "runs_per_path": len(files) * repeat,
        "audio_s": round(audio, 3),
        "direct_wall_s": round(direct, 3),
        "rest_wall_s": round(rest, 3),
        "ratio": round(rest / direct, 4),
        "rtf_direct": round(direct / audio, 4),
        "rtf_rest": round(rest / audio, 4),
        "median_file_ratio": round(statistics.median(ratios), 4),
        "median_paired_ratio": round(statistics.median(paired), 4),
        "median_file_overhead_ms": round(statistics.median(overheads), 1),
        "mean_overhead_ms_per_request": round(1000 * (rest - direct) / (len(files) * repeat), 1),
        "direct_cpu_s": round(direct_cpu, 3),
        "rest_cpu_s": round(rest_cpu, 3),
        "cpu_ratio": round(rest_cpu / direct_cpu, 4),
    }
    if all(len(f["rest_inference_s"]) == len(f["rest_s"]) for f in files):
        # REST wall time minus the time voxgate's engine calls took inside the server: everything the REST path
        # adds around inference (base64, JSON, HTTP, validation, voxgate's decoder, the scheduler, the response).
        inference = sum(sum(f["rest_inference_s"]) for f in files)
        plumbing = [s - i for f in files for s, i in zip(f["rest_s"], f["rest_inference_s"], strict=True)]
        out["rest_inference_s"] = round(inference, 3)
        out["rest_over_inference"] = round(rest / inference, 4)
        out["median_plumbing_ms"] = round(1000 * statistics.median(plumbing), 1)
    return out


def bench_model(
    model_id: str, settings: Settings, app: FastAPI, client: httpx.Client, files: list[dict[str, Any]], args: Any
) -> dict[str, Any]:
    started = time.perf_counter()
    direct = Direct(model_id, settings)
    direct_load = time.perf_counter() - started
    started = time.perf_counter()
    app.state.service.engine(model_id)
    rest_load = time.perf_counter() - started
    rest = Rest(client, model_id, app)

    warm = args.data / files[0]["path"]
    warmup = {"file": files[0]["path"], "direct_s": round(timed(direct, warm)[0], 3)}
    warmup["rest_s"] = round(timed(rest, warm)[0], 3)

    results = [
        {
            **f,
            **{key: [] for key in ("direct_s", "rest_s", "direct_cpu_s", "rest_cpu_s", "rest_inference_s")},
            "direct_text": "",
            "rest_text": "",
        }
        for f in files
    ]
    paths = {"direct": direct, "rest": rest}
    for rep in range(args.repeat):
        rep_started = time.perf_counter()
        # Interleaved per file; which path goes first alternates between repetitions, so neither always runs first.
        order = ("direct", "rest") if rep % 2 == 0 else ("rest", "direct")
        for r in results:
            path = args.data / r["path"]
            for name in order:
                seconds, cpu_seconds, text = timed(paths[name], path)
                r[f"{name}_s"].append(round(seconds, 4))
                r[f"{name}_cpu_s"].append(round(cpu_seconds, 4))
                if name == "rest" and rest.last_inference is not None:
                    r["rest_inference_s"].append(round(rest.last_inference, 4))
                if rep == 0:
                    r[f"{name}_text"] = text
                r[f"{name}_stable"] = r.get(f"{name}_stable", True) and text == r[f"{name}_text"]
        console.print(f"  {model_id}: repetition {rep + 1}/{args.repeat} in {time.perf_counter() - rep_started:.1f} s")
    direct.close()

    for r in results:
        d, s = statistics.median(r["direct_s"]), statistics.median(r["rest_s"])
        r["direct_median_s"] = round(d, 4)
        r["rest_median_s"] = round(s, 4)
        r["ratio_median"] = round(s / d, 4)
        r["overhead_ms_median"] = round(1000 * (s - d), 1)
        # Same words from both paths in every run: only then did both do the same decoding work.
        r["same_text"] = r["direct_text"] == r["rest_text"] and r["direct_stable"] and r["rest_stable"]

    short = [r for r in results if r["kind"] == "short"]
    long = [r for r in results if r["kind"] == "long"]
    subsets = {"short": summarise(short, args.repeat)}
    if long:
        subsets["long"] = summarise(long, args.repeat)
        subsets["all"] = summarise(results, args.repeat)
    same = [r for r in results if r["same_text"]]
    if same and len(same) < len(results):
        subsets["identical"] = summarise(same, args.repeat)
    return {
        "model": model_id,
        "model_dir": str(direct.model_dir),
        "direct_arguments": direct.arguments(),
        "load_s": {"direct": round(direct_load, 3), "voxgate": round(rest_load, 3)},
        "warmup": warmup,
        "subsets": subsets,
        "files": results,
    }


def cells(s: dict[str, Any]) -> list[str]:
    ratio = f"{s['ratio']:.3f}"
    ratio = f"[green]{ratio}[/green]" if s["ratio"] <= TARGET_RATIO else f"[red]{ratio}[/red]"
    engine = f"{s['rest_over_inference']:.3f}" if "rest_over_inference" in s else "-"
    plumbing = f"{s['median_plumbing_ms']:.0f}" if "median_plumbing_ms" in s else "-"
    return [
        ratio,
        f"{s['median_paired_ratio']:.3f}",
        f"{s['cpu_ratio']:.3f}",
        engine,
        plumbing,
        f"{s['rtf_direct']:.3f}",
        f"{s['rtf_rest']:.3f}",
    ]


CELL_COLUMNS = ("ratio", "paired med.", "CPU ratio", "REST/engine", "plumbing ms", "RTF direct", "RTF REST")
LEGEND = (
    "short = the 13 en/ clips, long = the 60 s file, all = both, identical = only files whose transcripts match "
    "between the paths. ratio = total REST wall / total direct wall (target <= 1.10); paired med. = median of "
    "REST/direct over back-to-back runs; CPU ratio = the same in CPU seconds of this process (other load does not "
    "inflate it); REST/engine = REST wall / time voxgate's engine calls took in the server; plumbing ms = median per "
    "request of REST wall minus that engine time (base64, HTTP, JSON, decoding, scheduling); RTF = wall / audio s."
)


def print_model(result: dict[str, Any]) -> None:
    titles = {"short": "short (13)", "long": "long (60 s)", "all": "all", "identical": "identical"}
    table = Table(title=f"{result['model']}: REST vs direct faster-whisper (wall time measured by the client)")
    table.add_column("files", no_wrap=True)
    for col in ("audio s", "direct s", "REST s", *CELL_COLUMNS):
        table.add_column(col, justify="right", no_wrap=True)
    for name, s in result["subsets"].items():
        table.add_row(
            titles[name], f"{s['audio_s']:.1f}", f"{s['direct_wall_s']:.2f}", f"{s['rest_wall_s']:.2f}", *cells(s)
        )
    console.print(table)
    differ = [f["path"] for f in result["files"] if not f["same_text"]]
    if differ:
        console.print(
            f"  transcripts differ between the paths for: {', '.join(differ)} (the two decoders give audio that "
            "differs by up to one int16 step; a different transcript is different decoding work, so the "
            "'identical' row is the cleanest overhead figure)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(MODELS), help="model ids (default: %(default)s)")
    parser.add_argument("--data", type=Path, default=DATA, help="shared data folder (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=OUT, help="JSON results file (default: %(default)s)")
    parser.add_argument("--home", type=Path, default=None, help="voxgate home (default: VOXGATE_HOME or user cache)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="cpu_threads (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each file per path (default: 3)")
    parser.add_argument(
        "--long",
        action=argparse.BooleanOptionalAction,
        default=True,
        help=f"include the 60 s {LONG_FILE} (default: on)",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")

    overrides: dict[str, Any] = {"preload": [], "cpu_threads": args.threads}
    if args.home is not None:
        overrides["home"] = args.home
    settings = Settings(**overrides)
    files = bench_files(args.data, args.long)
    machine = machine_info(MACHINE_DISTS, MACHINE_KEYS, round_load=False)
    started = time.perf_counter()
    cpu = CpuMeter()
    app = create_app(settings)
    results = []
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=600) as client:
        for model_id in args.models:
            console.print(f"{model_id}: {len(files)} files x {args.repeat} repetitions x 2 paths")
            result = bench_model(model_id, settings, app, client, files, args)
            results.append(result)
            print_model(result)

    table = Table(title="Summary: REST vs direct faster-whisper, and real-time factors")
    table.add_column("model", no_wrap=True)
    table.add_column("set", no_wrap=True)
    for col in CELL_COLUMNS:
        table.add_column(col, justify="right", no_wrap=True)
    for r in results:
        for name, s in r["subsets"].items():
            table.add_row(r["model"], name, *cells(s))
    console.print(table)
    console.print(LEGEND)
    load = cpu.result()
    if (said := describe_load(load)) is not None:
        console.print(said)

    report = {
        **report_head("speed", time.perf_counter() - started, args.data),
        "repeat": args.repeat,
        "target_ratio": TARGET_RATIO,
        "order": "per file, both paths back to back; direct first in repetitions 1, 3, ..., rest first in 2, 4, ...",
        "cpu": load,
        "settings": {
            "device": settings.device,
            "compute_type": settings.compute_type,
            "cpu_threads": settings.cpu_threads,
            "batch_size": settings.batch_size,
            "window_seconds": settings.window_seconds,
        },
        "machine": machine,
        "files": [{k: f[k] for k in ("path", "kind", "duration_s")} for f in files],
        "models": results,
    }
    write_report(args.out, report)
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
