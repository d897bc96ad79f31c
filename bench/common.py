"""Pieces the benchmark scripts share: the data folder, MANIFEST.tsv rows, machine facts, a CPU meter, a live
server, the WER counts and the JSON report file. The scripts import it as ``from common import ...`` (their own
folder is on sys.path when run as ``python bench/x.py``)."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import resource
import socket
import subprocess
import sys
import threading
import time
import wave
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.optimize import linear_sum_assignment

from voxgate.types import SAMPLE_RATE, Audio

if TYPE_CHECKING:
    import jiwer
    from fastapi import FastAPI

HERE = Path(__file__).resolve().parent
DATA = HERE.parent.parent / "shared" / "data"

# Every key machine_info can write, in the order it writes them.
MACHINE_KEYS = (
    "hostname",
    "platform",
    "python",
    "cpu_count",
    "cpu_affinity",
    "cpu_model",
    "load_average_at_start",
    "git_commit",
    "git_modified_voxgate",
    "voxgate_imported_from",
    "versions",
)


def read_manifest(path: Path) -> list[dict[str, str]]:
    """Rows of a tab-separated MANIFEST.tsv as dicts (references may contain commas and quotes: no csv quoting)."""
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"), strict=False)) for line in lines[1:]]


def loadavg() -> list[float] | None:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=HERE, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""


def version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return cpu


def machine_info(
    dists: Sequence[str], keys: Sequence[str] = MACHINE_KEYS, *, round_load: bool = True
) -> dict[str, Any]:
    """The machine facts named in ``keys`` (a subset of MACHINE_KEYS, written in MACHINE_KEYS order), with the
    versions of ``dists``. ``round_load=False`` gives os.getloadavg() as it comes."""

    def value(key: str) -> Any:
        if key == "hostname":
            return platform.node()
        if key == "platform":
            return platform.platform()
        if key == "python":
            return sys.version.split()[0]
        if key == "cpu_count":
            return os.cpu_count()
        if key == "cpu_affinity":
            return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
        if key == "cpu_model":
            return cpu_model()
        if key == "load_average_at_start":
            if round_load:
                return loadavg()
            return os.getloadavg() if hasattr(os, "getloadavg") else None
        if key == "git_commit":
            return git("rev-parse", "--short", "HEAD") or None
        if key == "git_modified_voxgate":
            return git("status", "--porcelain", "--", "voxgate").splitlines()
        if key == "voxgate_imported_from":
            import voxgate

            return str(Path(voxgate.__file__).parent)
        if key == "versions":
            return {dist: version(dist) for dist in dists}
        raise KeyError(key)

    return {key: value(key) for key in MACHINE_KEYS if key in keys}


def stereo_channels(path: Path) -> list[Audio]:
    """Each channel of a 16-bit 16 kHz stereo WAV as float32 mono."""
    with wave.open(str(path)) as w:
        channels, width, rate = w.getnchannels(), w.getsampwidth(), w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    if (channels, width, rate) != (2, 2, SAMPLE_RATE):
        raise SystemExit(f"{path}: expected 16-bit 16 kHz stereo, got {channels} ch, {8 * width} bit, {rate} Hz")
    frames = pcm.reshape(-1, 2)
    return [(frames[:, c].astype(np.float32) / 32768.0).astype(np.float32) for c in range(2)]


def mapped_accuracy(pairs: Sequence[tuple[int, str]]) -> float:
    """Share of words whose speaker tag maps to their true voice, given (tag, voice) per word, under the best
    one-to-one mapping of tags to voices (Hungarian assignment; words of surplus tags count as wrong)."""
    tags = sorted({tag for tag, _ in pairs})
    voices = sorted({voice for _, voice in pairs})
    counts = np.zeros((len(tags), len(voices)))
    for tag, voice in pairs:
        counts[tags.index(tag), voices.index(voice)] += 1
    rows, cols = linear_sum_assignment(-counts)
    return float(counts[rows, cols].sum() / max(1, len(pairs)))


def busy_seconds() -> float | None:
    """CPU seconds the whole machine has been busy (Linux /proc/stat; None elsewhere)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        # user nice system idle iowait irq softirq steal: everything but idle and iowait is busy.
        return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class CpuMeter:
    """How much CPU other processes on this machine used while we ran (Linux; shared CPUs make timings noisy)."""

    def __init__(self, end_load: bool = False) -> None:
        self.end_load = end_load
        self.start = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float | None, float]:
        return time.monotonic(), busy_seconds(), own_cpu_seconds()

    def result(self) -> dict[str, Any]:
        (t0, busy0, own0), (t1, busy1, own1) = self.start, self._sample()
        wall = t1 - t0
        out: dict[str, Any] = {"wall_s": round(wall, 1), "own_cpu_s": round(own1 - own0, 1)}
        if busy0 is not None and busy1 is not None and wall > 0:
            out["machine_busy_cores"] = round((busy1 - busy0) / wall, 2)
            out["own_cores"] = round((own1 - own0) / wall, 2)
            out["other_processes_cores"] = round(max(0.0, (busy1 - busy0) - (own1 - own0)) / wall, 2)
        if self.end_load:
            out["load_average_at_end"] = loadavg()
        return out


def describe_load(load: dict[str, Any]) -> str | None:
    """One sentence on who used the CPU during the run (None where the meter could not tell)."""
    if "other_processes_cores" not in load:
        return None
    return (
        f"CPU: this run used {load['own_cores']:.2f} cores on average; other processes on the machine used "
        f"{load['other_processes_cores']:.2f} of {os.cpu_count()} (shared CPUs make absolute times noisy)."
    )


def report_head(benchmark: str, wall: float, data: Path) -> dict[str, Any]:
    """The keys every JSON report starts with: which benchmark, when, how long it ran, on which data."""
    return {
        "benchmark": benchmark,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "wall_seconds": round(wall, 1),
        "data": str(data),
    }


def write_report(path: Path, report: Any, **dumps: Any) -> None:
    """A benchmark's JSON report: UTF-8, indented, its folder created."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False, **dumps) + "\n", encoding="utf-8")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class LiveServer:
    """uvicorn serving an app on a loopback port in a background thread (the pattern of tests/conftest.py).

    ``url`` is its http root, ``ws_url`` the websocket URL of ``endpoint``."""

    def __init__(self, app: FastAPI, endpoint: str = "", start_timeout: float = 30) -> None:
        import uvicorn

        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}{endpoint}"
        self.start_timeout = start_timeout
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", ws="websockets-sansio")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + self.start_timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("live server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def word_counts(out: jiwer.WordOutput, digits: int | None = None, hits: bool = True) -> dict[str, Any]:
    """Error counts of a jiwer alignment; ``digits`` rounds the WER, ``hits=False`` leaves the hits out."""
    words = out.hits + out.substitutions + out.deletions
    errors = out.substitutions + out.deletions + out.insertions
    wer = errors / words if words else 0.0
    result: dict[str, Any] = {
        "wer": round(wer, digits) if digits is not None and words else wer,
        "errors": errors,
        "reference_words": words,
        "substitutions": out.substitutions,
        "deletions": out.deletions,
        "insertions": out.insertions,
    }
    if hits:
        result["hits"] = out.hits
    return result
