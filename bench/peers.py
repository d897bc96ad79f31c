"""voxgate against two open-source streaming Whisper servers, WhisperLiveKit and WhisperLive, on one machine (CPU).

All three serve the same CTranslate2 model directory (voxgate's ``whisper/base``) through faster-whisper, each as a
server subprocess on a loopback port, and one harness drives them alike:

* the peers come from PyPI into virtual environments of their own under ``--venvs`` (default
  ``/tmp/peers-venvs``), created on first use with the pinned versions in :data:`VENVS` (torch, where a peer needs
  it, is installed first, so that pip never reaches for a CUDA build); they are never project dependencies. Nothing
  is downloaded at run time: ``HF_HUB_OFFLINE=1``, the model is a local directory, WhisperLiveKit's warm-up file is a
  local clip and its silero VAD ships in its wheel, WhisperLive's faster-whisper backend uses the VAD that ships in
  faster-whisper;
* the clips of ``en/MANIFEST.tsv``, each streamed in real time as 100 ms 16-bit 16 kHz PCM chunks (chunk k sent at
  t0 + (k + 1) x 100 ms) in each system's own protocol, then digital silence at the same pace until that system's
  own end of utterance has finalised the words (at most ``--max-silence`` seconds), then each system's own
  end-of-stream message (voxgate ``closeStream``, WhisperLiveKit an empty frame, WhisperLive ``END_OF_AUDIO``);
* rounds (``--rounds``): every clip goes to every system back to back, the order rotating from clip to clip and
  round to round, so that load from elsewhere hits all of them alike.

Figures, per system (the ``definitions`` of the JSON report say exactly how each is taken):

* end of speech -> final: the first message after the client sent the chunk holding the clip's last word (word
  timestamps of an offline faster-whisper pass over the clip) in which the system commits new words and holds no
  uncommitted text, before the client ends the stream. Runs whose final needed the end of the stream count as
  missing; their end of stream -> final is reported apart;
* speech start -> first partial: the first message holding any text, from the chunk holding the first word;
* streamed WER: the transcript the system's own client keeps when the stream ends (voxgate: its finals;
  WhisperLiveKit: its committed lines; WhisperLive: its completed segments plus the last pending one, as its client
  keeps it) against the references, Whisper's English normaliser and jiwer;
* server CPU seconds per second of audio streamed (user + system time of the server's process tree, from /proc),
  and peak RSS of the tree (sampled every 200 ms);
* streams held (``--streams``, slow): N concurrent real-time streams of clips separated by ``--gap`` s of silence;
  a level holds when every utterance's final arrives by the system's own end of utterance with p95 < 1 s and no
  chunk went out more than 300 ms late. The highest level reached before the first failure is the figure.

The 1-minute load average stands beside every figure (median over the runs behind it), and ratios are peer /
voxgate. Run it on a quiet machine: this measures latency on 2 shared cores.

    python bench/peers.py                                # 3 rounds of 13 clips -> bench/results/peers.json
    python bench/peers.py --streams 1 2 4 6 8            # also the concurrent-stream ramp
    python bench/peers.py --clips 2 --rounds 1           # smoke test
    python bench/peers.py --systems voxgate whisperlive  # a subset
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import math
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import websockets
from common import (
    DATA,
    _free_port,
    busy_seconds,
    loadavg,
    machine_info,
    own_cpu_seconds,
    report_head,
    write_report,
)
from latency import Clip, load_clips, r3, summary, wer_counts
from rich.console import Console
from rich.table import Table
from whisper_normalizer.english import EnglishTextNormalizer

from voxgate.audio.pcm import encode_linear16
from voxgate.config import Settings
from voxgate.models.catalog import resolve
from voxgate.models.materialize import materialize
from voxgate.types import SAMPLE_RATE, Audio

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "peers.json"
VENVS_DIR = Path("/tmp/peers-venvs")
MODEL_ID = "whisper/base"
SYSTEMS = ("voxgate", "whisperlivekit", "whisperlive")
LABELS = {"voxgate": "voxgate", "whisperlivekit": "WhisperLiveKit", "whisperlive": "WhisperLive"}
MACHINE_DISTS = ("voxgate", "faster-whisper", "ctranslate2", "onnxruntime", "websockets", "jiwer")
FINAL_TARGET_S = 1.0
"""A streams-held level passes when p95 end of speech -> final stays under this."""
SEND_LAG_LIMIT_S = 0.3
"""... and no chunk was sent later than this behind its real-time slot."""
END_SLACK_S = 1.0
"""A final counts for an utterance when the committed text ends (system's own timestamp) at most this much before
the utterance's last word ends, where the system gives one."""

console = Console(highlight=False, width=None if sys.stdout.isatty() else 140)


# -- the peers' virtual environments -------------------------------------------------------------------------------


@dataclass(frozen=True)
class VenvSpec:
    steps: tuple[tuple[str, ...], ...]
    """``pip install`` arguments, one install per step, in order."""
    check: str
    """Python that must run cleanly in the finished environment."""
    dists: tuple[str, ...]
    """Distributions whose versions the report records."""


VENVS: dict[str, VenvSpec] = {
    # whisperlivekit's own requirements, with the pieces that matter for the comparison pinned to the versions that
    # were verified together (CTranslate2 and onnxruntime as voxgate has them).
    "whisperlivekit": VenvSpec(
        steps=(
            ("torch==2.13.0",),
            (
                "whisperlivekit==0.2.26",
                "torch==2.13.0",
                "torchaudio==2.11.1",
                "faster-whisper==1.2.1",
                "ctranslate2==4.8.5",
                "onnxruntime==1.32.0",
                "numpy==2.4.6",
                "websockets==17.4",
                "fastapi==0.165.0",
                "starlette==1.10.0",
                "uvicorn==0.55.0",
                "librosa==0.11.0",
                "soundfile==0.14.0",
            ),
        ),
        check="import faster_whisper, torch, whisperlivekit.core, whisperlivekit.local_agreement.backends",
        dists=("whisperlivekit", "faster-whisper", "ctranslate2", "onnxruntime", "torch", "websockets", "uvicorn"),
    ),
    # whisper-live 0.10.0 declares every backend's requirements (OpenVINO, openai-whisper, TensorRT's CUDA wheels,
    # PyAudio, which needs PortAudio headers to build): it goes in without them, followed by what its server and
    # its faster-whisper backend import (faster-whisper pinned as whisper-live pins it; requests because
    # faster-whisper 1.2.0 imports it without declaring it).
    "whisperlive": VenvSpec(
        steps=(
            ("torch==2.13.0",),
            ("--no-deps", "whisper-live==0.10.0"),
            (
                "torch==2.13.0",
                "faster-whisper==1.2.0",
                "ctranslate2==4.8.5",
                "onnxruntime==1.32.0",
                "numpy==2.4.6",
                "websockets==17.4",
                "fastapi==0.165.0",
                "uvicorn==0.55.0",
                "scipy==1.17.1",
                "python-multipart==0.0.34",
                "prometheus-client==0.26.0",
                "requests==2.34.2",
            ),
        ),
        check="import whisper_live.server, whisper_live.backend.faster_whisper_backend",
        dists=("whisper-live", "faster-whisper", "ctranslate2", "onnxruntime", "torch", "websockets"),
    ),
}


class NotRunnable(Exception):
    """A peer that cannot be installed, started or streamed to here; the message says why."""


def _tail(text: str, lines: int = 12) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def ensure_venv(name: str, root: Path) -> Path:
    """The Python of the peer's virtual environment, created and filled on first use (a marker file records the
    spec it was built from; a changed spec rebuilds it)."""
    spec = VENVS[name]
    venv = root / name
    python = venv / "bin" / "python"
    marker = venv / ".bench-peers.json"
    wanted = json.dumps({"steps": spec.steps, "check": spec.check}, sort_keys=True)
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return python
    console.print(f"  {LABELS[name]}: creating {venv} (pip, a few minutes)")
    shutil.rmtree(venv, ignore_errors=True)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise NotRunnable(f"cannot create {root}: {exc}") from exc
    made = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True, check=False)
    if made.returncode:
        raise NotRunnable(f"python -m venv failed: {_tail(made.stderr)}")
    for step in spec.steps:
        pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", *step]
        done = subprocess.run(pip, capture_output=True, text=True, check=False)
        if done.returncode:
            raise NotRunnable(f"pip install {' '.join(step)} failed: {_tail(done.stderr)}")
    checked = subprocess.run(
        [str(python), "-c", spec.check], capture_output=True, text=True, check=False, env=offline_env(1)
    )
    if checked.returncode:
        raise NotRunnable(f"the installed package does not import: {_tail(checked.stderr)}")
    marker.write_text(wanted)
    return python


def venv_versions(python: Path, dists: Sequence[str]) -> dict[str, str | None]:
    code = (
        "import json, sys\nfrom importlib import metadata\nout = {}\nfor d in sys.argv[1:]:\n"
        "    try:\n        out[d] = metadata.version(d)\n    except metadata.PackageNotFoundError:\n"
        "        out[d] = None\nprint(json.dumps(out))\n"
    )
    done = subprocess.run([str(python), "-c", code, *dists], capture_output=True, text=True, check=False)
    try:
        versions: dict[str, str | None] = json.loads(done.stdout)
    except json.JSONDecodeError:
        versions = dict.fromkeys(dists)
    return versions


def pip_freeze(python: Path) -> list[str]:
    done = subprocess.run(
        [str(python), "-m", "pip", "freeze", "--disable-pip-version-check"], capture_output=True, text=True, check=False
    )
    return done.stdout.split()


def offline_env(threads: int) -> dict[str, str]:
    """The environment every server runs with: no hub downloads, one thread count for all."""
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "OMP_NUM_THREADS": str(threads),
        "PYTHONUNBUFFERED": "1",
    }


# -- the server's process tree (Linux /proc) -----------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def _stat_fields(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/PID/stat (after the command name, which may hold spaces)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rfind(")") + 2 :].split()


def tree_pids(root: int) -> list[int]:
    """``root`` and every live descendant."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat_fields(int(entry.name))) is not None:
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(parents.get(pid, []))
    return found


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU time of the tree: each live process's own and that of its children it has reaped."""
    ticks = 0
    for pid in tree_pids(root):
        if (fields := _stat_fields(pid)) is not None:
            ticks += sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    return ticks / CLOCK_TICKS


def tree_rss_bytes(root: int) -> int:
    total = 0
    for pid in tree_pids(root):
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE
    return total


class RssPeak:
    """Samples the tree's RSS every ``period`` seconds in a thread; ``take()`` returns the peak since the last."""

    def __init__(self, root: int, period: float = 0.2) -> None:
        self.root, self.period = root, period
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            self.peak = max(self.peak, tree_rss_bytes(self.root))

    def start(self) -> RssPeak:
        self._thread.start()
        return self

    def take(self) -> int:
        peak, self.peak = max(self.peak, tree_rss_bytes(self.root)), 0
        return peak

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


# -- the servers ---------------------------------------------------------------------------------------------------

WHISPERLIVE_LAUNCHER = """\
import sys
from whisper_live.server import TranscriptionServer

# The faster-whisper backend on a local CTranslate2 directory, one model shared by all clients (WhisperLive's own
# run_server.py default), as many clients as the bench opens.
TranscriptionServer().run(
    "127.0.0.1",
    port=int(sys.argv[1]),
    backend="faster_whisper",
    faster_whisper_custom_model_path=sys.argv[2],
    single_model=True,
    max_clients=int(sys.argv[3]),
    max_connection_time=3600,
)
"""


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _http_ready(url: str, key: str) -> bool:
    try:
        return bool(httpx.get(url, timeout=5).json().get(key))
    except (httpx.HTTPError, ValueError):
        return False


@dataclass
class Server:
    system: str
    command: list[str]
    env: dict[str, str]
    port: int
    log: Path
    process: subprocess.Popen[bytes] | None = None
    rss: RssPeak | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def ready(self) -> bool:
        if self.system == "voxgate":
            return _http_ready(f"http://127.0.0.1:{self.port}/healthz", "models_loaded")
        if self.system == "whisperlivekit":
            return _http_ready(f"http://127.0.0.1:{self.port}/health", "ready")
        return _port_open(self.port)

    def start(self, timeout: float = 300) -> None:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                self.command, env=self.env, stdout=out, stderr=out, start_new_session=True, cwd=HERE.parent
            )
        deadline = time.monotonic() + timeout
        while not self.ready():
            if self.process.poll() is not None or time.monotonic() > deadline:
                why = "exited" if self.process.poll() is not None else f"not ready after {timeout:.0f} s"
                text = self.log.read_text(errors="replace")
                self.stop()
                raise NotRunnable(f"the server {why}: {_tail(text)}")
            time.sleep(0.5)
        self.rss = RssPeak(self.pid).start()

    def stop(self) -> None:
        if self.rss is not None:
            self.rss.stop()
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)


def make_server(
    system: str, python: Path | None, model_dir: Path, home: Path, warmup: Path, args: argparse.Namespace, logs: Path
) -> Server:
    port = _free_port()
    env = offline_env(args.threads)
    log = logs / f"{system}.log"
    if system == "voxgate":
        env.update(
            VOXGATE_HOME=str(home),
            VOXGATE_DEFAULT_MODEL=MODEL_ID,
            VOXGATE_PRELOAD='["default"]',
            VOXGATE_CPU_THREADS=str(args.threads),
            VOXGATE_CONSOLE="false",
            PYTHONPATH=str(HERE.parent),
        )
        command = [sys.executable, "-m", "voxgate", "serve", "--port", str(port), "--log-level", "warning"]
    elif system == "whisperlivekit":
        assert python is not None
        command = [
            str(python.parent / "whisperlivekit-server"),
            "--host", "127.0.0.1",
            "--port", str(port),
            "--backend", "faster-whisper",
            "--backend-policy", "localagreement",
            "--model_dir", str(model_dir),
            "--lan", args.language,
            "--pcm-input",
            "--warmup-file", str(warmup),
            "--log-level", "WARNING",
        ]  # fmt: skip
    else:
        assert python is not None
        command = [str(python), "-c", WHISPERLIVE_LAUNCHER, str(port), str(model_dir), str(max(64, *args.streams, 1))]
    return Server(system, command, env, port, log)


# -- each system's protocol ----------------------------------------------------------------------------------------


@dataclass
class Tracker:
    """One stream's transcript as seen from the client: committed (final) text, uncommitted text, errors."""

    system: str
    committed: list[str] = field(default_factory=list)
    pending: str = ""
    end_s: float | None = None
    """Stream time where the committed text ends, when the system says."""
    errors: list[str] = field(default_factory=list)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    done: bool = False
    _segments: list[dict[str, Any]] = field(default_factory=list)

    def take(self, message: Any) -> None:
        if not isinstance(message, dict):
            return
        if self.system == "voxgate":
            self._voxgate(message)
        elif self.system == "whisperlivekit":
            self._whisperlivekit(message)
        else:
            self._whisperlive(message)

    def _voxgate(self, m: dict[str, Any]) -> None:
        if "error" in m:
            self.errors.append(f"{m['error'].get('code')}: {m['error'].get('message')}")
        tr = m.get("result", {}).get("transcription")
        if tr is None:
            return
        if tr["isFinal"]:
            if tr["transcript"].strip():
                self.committed.append(tr["transcript"].strip())
                self.end_s = tr.get("endTimeSeconds")
            self.pending = ""
        else:
            self.pending = tr["transcript"].strip()

    def _whisperlivekit(self, m: dict[str, Any]) -> None:
        kind = m.get("type")
        if kind == "config":
            self.ready.set()
        elif kind == "ready_to_stop":
            self.done = True
        if m.get("error"):
            self.errors.append(str(m["error"]))
        if "lines" in m:
            lines = [line for line in m["lines"] if str(line.get("text", "")).strip()]
            self.committed = [str(line["text"]).strip() for line in lines]
            self.end_s = _clock_seconds(lines[-1].get("end")) if lines else None
            self.pending = str(m.get("buffer_transcription", "")).strip()

    def _whisperlive(self, m: dict[str, Any]) -> None:
        if m.get("message") == "SERVER_READY":
            self.ready.set()
        elif m.get("message") == "DISCONNECT":
            self.done = True
        if m.get("status") in ("ERROR", "WAIT"):
            self.errors.append(f"{m['status']}: {m.get('message')}")
        segments = m.get("segments")
        if not segments:
            return
        # As WhisperLive's own client keeps them: a completed segment is taken when it starts at or after the end
        # of the last one taken (the server resends the last few each time); a last segment not completed is the
        # text still in flux.
        for seg in segments:
            if seg.get("completed") and (not self._segments or float(seg["start"]) >= float(self._segments[-1]["end"])):
                self._segments.append(seg)
        self.committed = [str(s["text"]).strip() for s in self._segments if str(s["text"]).strip()]
        self.end_s = float(self._segments[-1]["end"]) if self._segments else None
        last = segments[-1]
        self.pending = "" if last.get("completed") else str(last.get("text", "")).strip()

    @property
    def committed_text(self) -> str:
        return " ".join(self.committed)

    @property
    def kept_text(self) -> str:
        """The transcript the system's own client keeps at the end of the stream: WhisperLive's client appends the
        last segment even if never completed; the others keep only what was committed."""
        if self.system == "whisperlive" and self.pending:
            return " ".join([*self.committed, self.pending])
        return self.committed_text

    def words(self) -> int:
        return len(self.committed_text.split())


def _clock_seconds(value: Any) -> float | None:
    """WhisperLiveKit's ``H:MM:SS.ss`` as seconds."""
    try:
        h, m, s = str(value).split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)
    except (ValueError, TypeError):
        return None


def ws_url(system: str, port: int, language: str) -> str:
    if system == "voxgate":
        return f"ws://127.0.0.1:{port}/stt/v1/transcribe:streamBidirectional"
    if system == "whisperlivekit":
        return f"ws://127.0.0.1:{port}/asr?language={language}"
    return f"ws://127.0.0.1:{port}"


def hello(system: str, language: str) -> str | None:
    """The first message of a stream (WhisperLiveKit takes its options in the URL)."""
    if system == "voxgate":
        return json.dumps(
            {
                "transcribeConfig": {
                    "modelId": MODEL_ID,
                    "audioEncoding": "LINEAR16",
                    "sampleRateHertz": SAMPLE_RATE,
                    "language": language,
                    "enablePartials": True,
                }
            }
        )
    if system == "whisperlive":
        # WhisperLive's client defaults, with 16-bit PCM as the others get it.
        return json.dumps(
            {
                "uid": str(uuid.uuid4()),
                "language": language,
                "task": "transcribe",
                "model": "base",
                "use_vad": True,
                "send_last_n_segments": 10,
                "no_speech_thresh": 0.45,
                "clip_audio": False,
                "same_output_threshold": 10,
                "audio_format": "int16",
            }
        )
    return None


def audio_message(system: str, pcm: bytes) -> str | bytes:
    if system == "voxgate":
        return json.dumps({"audioChunk": {"content": base64.b64encode(pcm).decode("ascii")}})
    return pcm


def end_message(system: str) -> str | bytes:
    return {"voxgate": '{"closeStream": {}}', "whisperlivekit": b"", "whisperlive": b"END_OF_AUDIO"}[system]


# -- one stream ----------------------------------------------------------------------------------------------------


@dataclass
class Snapshot:
    """The client's view after a message that changed it."""

    at: float
    committed_words: int
    pending: str
    end_s: float | None


def sent_at(sends: list[float], chunk_s: float, position: float, *, end: bool = False) -> float:
    """Wall time the client sent the chunk holding stream position ``position`` (``end``: the chunk holding the last
    sample before it)."""
    k = math.ceil(position / chunk_s - 1e-6) - 1 if end else math.floor(position / chunk_s + 1e-6)
    return float(sends[min(max(0, k), len(sends) - 1)])


def is_final(prev: Snapshot | None, snap: Snapshot, speech_end: float) -> bool:
    """``snap`` commits new words, leaves nothing uncommitted and (where the system dates it) ends near the
    utterance's last word."""
    grew = snap.committed_words > (prev.committed_words if prev else 0)
    near = snap.end_s is None or snap.end_s >= speech_end - END_SLACK_S
    return grew and not snap.pending and near


async def stream(
    system: str,
    url: str,
    audio: Audio,
    *,
    chunk_s: float,
    language: str,
    speech_end: float | None = None,
    max_silence: float = 0.0,
) -> dict[str, Any]:
    """Stream ``audio`` in real time, then silence until the system's own final for the speech that ended at
    ``speech_end`` (None: no early stop) or ``max_silence`` seconds, then the system's end of stream; return what was
    sent when and how the client's view changed when."""
    samples = round(chunk_s * SAMPLE_RATE)
    pcm = encode_linear16(audio)
    chunks = [pcm[i : i + 2 * samples] for i in range(0, len(pcm), 2 * samples)]
    silence = bytes(2 * samples)
    silence_chunks = round(max_silence / chunk_s)
    tracker = Tracker(system)
    snapshots: list[Snapshot] = []
    sends: list[float] = []
    final_seen = asyncio.Event()
    speech_end_chunk = None if speech_end is None else math.ceil(speech_end / chunk_s - 1e-6)
    closed_by: list[str] = []
    async with websockets.connect(url, max_size=None, open_timeout=60, close_timeout=10) as ws:

        async def receive() -> None:
            try:
                async for raw in ws:
                    tracker.take(json.loads(raw))
                    view = (tracker.words(), tracker.pending, tracker.end_s)
                    last = snapshots[-1] if snapshots else None
                    if last is None or view != (last.committed_words, last.pending, last.end_s):
                        snap = Snapshot(time.perf_counter(), *view)
                        if (
                            speech_end is not None
                            and speech_end_chunk is not None
                            and len(sends) >= speech_end_chunk
                            and is_final(last, snap, speech_end)
                        ):
                            final_seen.set()
                        snapshots.append(snap)
                    if tracker.done:
                        return
            except websockets.ConnectionClosed as exc:
                closed_by.append(f"closed {exc.rcvd.code if exc.rcvd else None}")

        receiver = asyncio.create_task(receive())
        if (first := hello(system, language)) is not None:
            await ws.send(first)
        if system == "voxgate":
            tracker.ready.set()
        ready = asyncio.create_task(tracker.ready.wait())
        await asyncio.wait({ready, receiver}, timeout=180, return_when=asyncio.FIRST_COMPLETED)
        if not tracker.ready.is_set():
            ready.cancel()
            receiver.cancel()
            raise NotRunnable(f"no ready message from the server ({'; '.join(tracker.errors + closed_by)})")
        t0 = time.perf_counter()
        for k in range(len(chunks) + silence_chunks):
            if k >= len(chunks) and final_seen.is_set():
                break
            delay = t0 + (k + 1) * chunk_s - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if receiver.done():
                break
            try:
                await ws.send(audio_message(system, chunks[k] if k < len(chunks) else silence))
            except websockets.ConnectionClosed:
                break
            sends.append(time.perf_counter())
        close_at = None
        if not receiver.done():
            with contextlib.suppress(websockets.ConnectionClosed):
                await ws.send(end_message(system))
                close_at = time.perf_counter()
        try:
            await asyncio.wait_for(receiver, timeout=60)
        except TimeoutError:
            tracker.errors.append("no end of stream from the server within 60 s")
    return {
        "t0": t0,
        "chunk_s": chunk_s,
        "sends": sends,
        "clip_chunks": len(chunks),
        "snapshots": snapshots,
        "close_at": close_at,
        "committed_text": tracker.committed_text,
        "kept_text": tracker.kept_text,
        "errors": tracker.errors,
        "send_lag_max_s": max((s - (t0 + (k + 1) * chunk_s) for k, s in enumerate(sends)), default=0.0),
    }


def find_final(
    raw: dict[str, Any], speech_end: float, *, start: int = 0, before: float, until: float = math.inf
) -> tuple[float | None, int]:
    """(end of speech -> final in seconds, index of the final's snapshot) for speech ending at ``speech_end``: the
    first snapshot from ``start`` on that :func:`is_final` accepts, that arrived after the client sent the end of
    speech and before ``before`` (the client's end of stream), and after which the committed text does not grow again
    before ``until`` (the next utterance's start was sent; for the last one, ever: a flush at the end of the stream
    that commits more words shows the words were not final yet). (None, start) if there is none."""
    snaps, sends, chunk_s = raw["snapshots"], raw["sends"], raw["chunk_s"]
    if not sends:
        return None, start
    t_end = sent_at(sends, chunk_s, speech_end, end=True)
    for i in range(start, len(snaps)):
        snap = snaps[i]
        if snap.at >= before:
            break
        if snap.at < t_end or not is_final(snaps[i - 1] if i else None, snap, speech_end):
            continue
        if any(later.at < until and later.committed_words > snap.committed_words for later in snaps[i + 1 :]):
            continue
        return snap.at - t_end, i
    return None, start


def analyse(raw: dict[str, Any], clip: Clip) -> dict[str, Any]:
    sends, chunk_s, snaps = raw["sends"], raw["chunk_s"], raw["snapshots"]
    close_at = raw["close_at"] if raw["close_at"] is not None else float("inf")
    eos_final, _ = find_final(raw, clip.speech_end, before=close_at)
    text_at = [s.at for s in snaps if s.committed_words or s.pending]
    first_partial = text_at[0] - sent_at(sends, chunk_s, clip.speech_start) if text_at and sends else None
    # Where the system's own end of utterance did not finalise the words: how long after the end of stream the
    # committed text reached its last state (None if nothing was committed then).
    after_close = None
    if eos_final is None and raw["close_at"] is not None:
        grew = [
            s.at
            for i, s in enumerate(snaps)
            if s.at >= close_at and s.committed_words > (snaps[i - 1].committed_words if i else 0)
        ]
        after_close = grew[-1] - close_at if grew else None
    return {
        "clip": clip.name,
        "audio_sent_s": round(len(sends) * chunk_s, 3),
        "silence_sent_s": round(max(0, len(sends) - raw["clip_chunks"]) * chunk_s, 3),
        "send_lag_max_ms": round(1000 * raw["send_lag_max_s"], 1),
        "eos_to_final_s": r3(eos_final),
        "close_to_final_s": r3(after_close),
        "first_partial_s": r3(first_partial),
        "kept_text": raw["kept_text"],
        "committed_text": raw["committed_text"],
        "updates": len(snaps),
        "errors": raw["errors"],
    }


@dataclass
class Meter:
    """CPU of the server's tree, of this process and of the whole machine between two points."""

    pid: int
    start: tuple[float, float, float | None, float] = (0.0, 0.0, None, 0.0)

    def __post_init__(self) -> None:
        self.start = self._sample()

    def _sample(self) -> tuple[float, float, float | None, float]:
        return time.monotonic(), tree_cpu_seconds(self.pid), busy_seconds(), own_cpu_seconds()

    def result(self) -> dict[str, Any]:
        (t0, server0, busy0, own0), (t1, server1, busy1, own1) = self.start, self._sample()
        wall = max(t1 - t0, 1e-9)
        out: dict[str, Any] = {"wall_s": round(wall, 2), "server_cpu_s": round(server1 - server0, 3)}
        if busy0 is not None and busy1 is not None:
            others = (busy1 - busy0) - (server1 - server0) - (own1 - own0)
            out["other_processes_cores"] = round(max(0.0, others) / wall, 2)
        out["loadavg"] = loadavg()
        return out


# -- the runs ------------------------------------------------------------------------------------------------------


def reference_words(clips: list[Clip], model_dir: Path, threads: int, language: str) -> None:
    """Where speech starts and ends in each clip: word timestamps of one offline faster-whisper pass (beam 5, VAD)
    over the same model directory, in this process, before any server runs."""
    from faster_whisper import WhisperModel

    model = WhisperModel(str(model_dir), device="cpu", compute_type="int8", cpu_threads=threads)
    for clip in clips:
        segments, _ = model.transcribe(
            clip.audio, language=language, beam_size=5, word_timestamps=True, vad_filter=True
        )
        words = [w for s in segments for w in (s.words or [])]
        clip.offline = {
            "text": "".join(w.word for w in words).strip(),
            "first_word_start_s": round(words[0].start, 3) if words else 0.0,
            "last_word_end_s": round(words[-1].end, 3) if words else clip.duration,
        }
    del model


async def run_clip(system: str, server: Server, clip: Clip, args: argparse.Namespace) -> dict[str, Any]:
    meter = Meter(server.pid)
    raw = await stream(
        system,
        ws_url(system, server.port, args.language),
        clip.audio,
        chunk_s=args.chunk_ms / 1000,
        language=args.language,
        speech_end=clip.speech_end,
        max_silence=args.max_silence,
    )
    return {**analyse(raw, clip), "cpu": meter.result()}


def rotate(items: Sequence[str], k: int) -> list[str]:
    k %= max(1, len(items))
    return [*items[k:], *items[:k]]


def fmt_ms(value: float | None) -> str:
    return "-" if value is None else f"{1000 * value:.0f}"


async def run_rounds(
    servers: dict[str, Server], clips: list[Clip], args: argparse.Namespace, not_runnable: dict[str, str]
) -> dict[str, list[dict[str, Any]]]:
    rows: dict[str, list[dict[str, Any]]] = {s: [] for s in servers}
    for r in range(args.rounds):
        for i, clip in enumerate(clips):
            done = []
            for system in rotate(list(servers), r + i):
                if system in not_runnable:
                    continue
                try:
                    row = await run_clip(system, servers[system], clip, args)
                except (NotRunnable, OSError, websockets.WebSocketException) as exc:
                    not_runnable[system] = f"stream failed: {exc}"
                    continue
                row["round"] = r + 1
                rows[system].append(row)
                own = fmt_ms(row["eos_to_final_s"])
                late = "" if row["eos_to_final_s"] is not None else f" (close->final {fmt_ms(row['close_to_final_s'])})"
                done.append(f"{LABELS[system]} {own}{late}")
            console.print(
                f"  round {r + 1}/{args.rounds} clip {i + 1:>2}/{len(clips)} {clip.name:<14} end of speech -> final "
                f"ms: {', '.join(done)} (loadavg {loadavg()})"
            )
    return rows


# -- streams held --------------------------------------------------------------------------------------------------


def ramp_audio(clips: list[Clip], first: int, duration: float, gap: float) -> tuple[Audio, list[tuple[float, float]]]:
    """Clips from ``first`` on, cycling, each followed by ``gap`` s of silence, until ``duration`` s are filled; with
    (speech start, speech end) of each utterance in stream time."""
    parts: list[Audio] = []
    spans: list[tuple[float, float]] = []
    at, k = 0.0, first
    silence = np.zeros(round(gap * SAMPLE_RATE), dtype=np.float32)
    while at < duration:
        clip = clips[k % len(clips)]
        parts += [clip.audio, silence]
        spans.append((at + clip.speech_start, at + clip.speech_end))
        at += clip.duration + gap
        k += 1
    return np.concatenate(parts).astype(np.float32), spans


async def run_level(system: str, server: Server, clips: list[Clip], n: int, args: argparse.Namespace) -> dict[str, Any]:
    """``n`` concurrent real-time streams, stream i starting i x 0.25 s after the first."""
    url = ws_url(system, server.port, args.language)
    chunk_s = args.chunk_ms / 1000

    async def one(i: int) -> tuple[dict[str, Any], list[tuple[float, float]]]:
        await asyncio.sleep(0.25 * i)
        audio, spans = ramp_audio(clips, 3 * i, args.duration, args.gap)
        raw = await stream(system, url, audio, chunk_s=chunk_s, language=args.language)
        return raw, spans

    assert server.rss is not None
    server.rss.take()
    meter = Meter(server.pid)
    results = await asyncio.gather(*(one(i) for i in range(n)))
    cpu = meter.result()
    latencies: list[float | None] = []
    lag = 0.0
    audio_s = 0.0
    errors: list[str] = []
    for raw, spans in results:
        index = 0
        close_at = raw["close_at"] if raw["close_at"] is not None else float("inf")
        sent_s = len(raw["sends"]) * chunk_s
        for k, (_, end) in enumerate(spans):
            if end > sent_s:
                break  # not sent (the stream broke off)
            nxt = spans[k + 1][0] if k + 1 < len(spans) else None
            until = sent_at(raw["sends"], chunk_s, nxt) if nxt is not None and nxt < sent_s else math.inf
            latency, found = find_final(raw, end, start=index, before=close_at, until=until)
            latencies.append(latency)
            index = found + 1 if latency is not None else index
        lag = max(lag, raw["send_lag_max_s"])
        audio_s += len(raw["sends"]) * chunk_s
        errors += raw["errors"]
    got = [x for x in latencies if x is not None]
    p95 = float(np.percentile(got, 95)) if got else None
    missing = len(latencies) - len(got)
    passed = bool(latencies) and not missing and p95 is not None and p95 < FINAL_TARGET_S and lag <= SEND_LAG_LIMIT_S
    return {
        "streams": n,
        "passed": passed,
        "utterances": len(latencies),
        "finals_missing": missing,
        "eos_to_final": summary(latencies),
        "send_lag_max_ms": round(1000 * lag, 1),
        "server_cpu_per_audio_s": round(cpu["server_cpu_s"] / audio_s, 3) if audio_s else None,
        "peak_rss_mib": round(server.rss.take() / 2**20, 1),
        "errors": errors[:20],
        "cpu": cpu,
    }


async def run_streams(
    servers: dict[str, Server], clips: list[Clip], args: argparse.Namespace, not_runnable: dict[str, str]
) -> dict[str, list[dict[str, Any]]]:
    """Each level for each system still passing, the order rotating per level; a system stops at its first
    failing level."""
    levels: dict[str, list[dict[str, Any]]] = {s: [] for s in servers}
    alive = [s for s in servers if s not in not_runnable]
    for j, n in enumerate(args.streams):
        for system in rotate(alive, j):
            try:
                level = await run_level(system, servers[system], clips, n, args)
            except (NotRunnable, OSError, websockets.WebSocketException) as exc:
                level = {"streams": n, "passed": False, "error": str(exc), "cpu": {"loadavg": loadavg()}}
            levels[system].append(level)
            s = level.get("eos_to_final", {})
            console.print(
                f"  streams {n}: {LABELS[system]} {'held' if level['passed'] else 'failed'}: end of speech -> final "
                f"p95 {s.get('p95_ms', '-')} ms, {level.get('finals_missing', '-')} of {level.get('utterances', '-')} "
                f"finals missing, send lag max {level.get('send_lag_max_ms', '-')} ms (loadavg {loadavg()})"
            )
        alive = [s for s in alive if levels[s][-1]["passed"]]
        if not alive:
            break
    return levels


def streams_held(levels: list[dict[str, Any]]) -> int:
    held = 0
    for level in levels:
        if not level["passed"]:
            break
        held = level["streams"]
    return held


# -- summaries and the table ---------------------------------------------------------------------------------------


def load_figure(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The 1-minute load average over the runs behind a figure (sampled at the end of each), and the cores other
    processes used meanwhile."""
    loads = [r["cpu"]["loadavg"][0] for r in rows if r["cpu"].get("loadavg")]
    others = [r["cpu"]["other_processes_cores"] for r in rows if "other_processes_cores" in r["cpu"]]
    return {
        "loadavg_1m_median": round(statistics.median(loads), 2) if loads else None,
        "loadavg_1m_min": min(loads, default=None),
        "loadavg_1m_max": max(loads, default=None),
        "other_processes_cores_median": round(statistics.median(others), 2) if others else None,
    }


def summarise(
    rows: list[dict[str, Any]], clips: list[Clip], normalizer: Any, peak_rss: int, idle_rss: int
) -> dict[str, Any]:
    by_clip = {c.name: c for c in clips}
    refs = [normalizer(by_clip[r["clip"]].reference) for r in rows]
    audio = sum(r["audio_sent_s"] for r in rows)
    speech = sum(by_clip[r["clip"]].duration for r in rows)
    cpu = sum(r["cpu"]["server_cpu_s"] for r in rows)
    own = [r for r in rows if r["eos_to_final_s"] is not None]
    return {
        "runs": len(rows),
        "eos_to_final": summary([r["eos_to_final_s"] for r in rows]),
        "finals_by_own_end_of_utterance": len(own),
        "close_to_final": summary([r["close_to_final_s"] for r in rows if r["eos_to_final_s"] is None]),
        "first_partial": summary([r["first_partial_s"] for r in rows]),
        "wer_stream": wer_counts(refs, [normalizer(r["kept_text"]) for r in rows]),
        "wer_committed_only": wer_counts(refs, [normalizer(r["committed_text"]) for r in rows]),
        "server_cpu_s": round(cpu, 2),
        "server_cpu_per_audio_s": round(cpu / audio, 4) if audio else None,
        "server_cpu_per_clip_audio_s": round(cpu / speech, 4) if speech else None,
        "audio_streamed_s": round(audio, 1),
        "silence_streamed_s": round(sum(r["silence_sent_s"] for r in rows), 1),
        "peak_rss_mib": round(peak_rss / 2**20, 1),
        "idle_rss_mib": round(idle_rss / 2**20, 1),
        "max_send_lag_ms": max((r["send_lag_max_ms"] for r in rows), default=None),
        "errors": [f"{r['clip']}: {'; '.join(r['errors'])}" for r in rows if r["errors"]],
        "load": load_figure(rows),
    }


def figures(result: dict[str, Any]) -> dict[str, tuple[float | None, str, float | None]]:
    """Per headline figure: (value, its text, the 1-minute load average beside it)."""
    s = result.get("summary")
    out: dict[str, tuple[float | None, str, float | None]] = {}
    if s is None:
        return out
    load = s["load"]["loadavg_1m_median"]
    runs = s["runs"]

    def ms(key: str, stat: str, note: str = "") -> tuple[float | None, str, float | None]:
        value = s[key].get(stat)
        return value, ("-" if value is None else f"{value:.0f} ms{note}"), load

    own = s["finals_by_own_end_of_utterance"]
    out["end of speech -> final, p50"] = ms("eos_to_final", "p50_ms", f" ({own}/{runs})")
    out["end of speech -> final, p95"] = ms("eos_to_final", "p95_ms")
    out["end of stream -> final (runs without own final), p50"] = ms("close_to_final", "p50_ms")
    out["speech start -> first partial, p50"] = ms("first_partial", "p50_ms")
    out["speech start -> first partial, p95"] = ms("first_partial", "p95_ms")
    wer = s["wer_stream"]["wer"]
    out["streamed WER"] = (wer, f"{100 * wer:.1f} %", load)
    cpu = s["server_cpu_per_audio_s"]
    out["server CPU s per audio s"] = (cpu, "-" if cpu is None else f"{cpu:.3f}", load)
    rss = s["peak_rss_mib"]
    out["server peak RSS"] = (rss, f"{rss:.0f} MiB", load)
    if "streams" in result:
        levels = result["streams"]
        held = streams_held(levels)
        at = next((lv for lv in reversed(levels) if lv["passed"]), levels[0] if levels else None)
        level_load = at["cpu"]["loadavg"][0] if at and at["cpu"].get("loadavg") else None
        out["streams held (final p95 < 1 s)"] = (float(held), str(held), level_load)
    return out


def print_table(results: dict[str, dict[str, Any]], not_runnable: dict[str, str]) -> None:
    systems = list(results)
    base = figures(results.get("voxgate", {}))
    table = Table(title="voxgate and its peers: same model, clips and harness (load = 1-minute load average)")
    table.add_column("figure", overflow="fold")
    for system in systems:
        table.add_column(LABELS[system], justify="right")
        table.add_column("load", justify="right")
        if system != "voxgate":
            table.add_column("/ voxgate", justify="right")
    names = [name for f in (figures(results[s]) for s in systems) for name in f]
    for name in dict.fromkeys(names):
        cells = [name]
        for system in systems:
            fig = figures(results[system]).get(name)
            if system in not_runnable and fig is None:
                cells += ["not runnable", "-"] + ([] if system == "voxgate" else ["-"])
                continue
            value, text, load = fig if fig else (None, "-", None)
            cells += [text, "-" if load is None else f"{load:.2f}"]
            if system != "voxgate":
                ref = base.get(name, (None, "", None))[0]
                ratio = f"{value / ref:.2f}x" if value is not None and ref else "-"
                cells.append(ratio)
        table.add_row(*cells)
    console.print(table)
    for system, reason in not_runnable.items():
        console.print(f"  [red]{LABELS[system]}: not runnable: {reason}[/red]")
    for system, result in results.items():
        s = result.get("summary")
        if s is None:
            continue
        load = s["load"]
        console.print(
            f"  {LABELS[system]}: {s['runs']} runs, {s['finals_by_own_end_of_utterance']} finalised by its own end of "
            f"utterance; WER {100 * s['wer_stream']['wer']:.1f} % ({s['wer_stream']['errors']} errors / "
            f"{s['wer_stream']['reference_words']} words; committed text only "
            f"{100 * s['wer_committed_only']['wer']:.1f} %); {s['audio_streamed_s']} s streamed "
            f"({s['silence_streamed_s']} s of it silence); idle RSS "
            f"{s['idle_rss_mib']:.0f} MiB; loadavg {load['loadavg_1m_min']}-{load['loadavg_1m_max']} (median "
            f"{load['loadavg_1m_median']}), other processes {load['other_processes_cores_median']} cores"
        )
        for error in s["errors"][:5]:
            console.print(f"  [red]{LABELS[system]}: {error}[/red]")
        for level in result.get("streams", []):
            e = level.get("eos_to_final", {})
            console.print(
                f"    {level['streams']} streams: {'held' if level['passed'] else 'failed'}, final p50 "
                f"{e.get('p50_ms', '-')} / p95 {e.get('p95_ms', '-')} ms, {level.get('finals_missing', '-')} of "
                f"{level.get('utterances', '-')} finals missing, CPU {level.get('server_cpu_per_audio_s', '-')} s per "
                f"audio s, peak RSS {level.get('peak_rss_mib', '-')} MiB (loadavg {level['cpu'].get('loadavg')})"
            )


# -- main ----------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def running(servers: dict[str, Server], not_runnable: dict[str, str]) -> Iterator[None]:
    try:
        for system, server in servers.items():
            if system in not_runnable:
                continue
            started = time.perf_counter()
            try:
                server.start()
            except NotRunnable as exc:
                not_runnable[system] = str(exc)
                continue
            console.print(f"  {LABELS[system]}: up on port {server.port} in {time.perf_counter() - started:.1f} s")
        yield
    finally:
        for server in servers.values():
            server.stop()


async def warm_up(
    servers: dict[str, Server], clip: Clip, args: argparse.Namespace, not_runnable: dict[str, str]
) -> None:
    """One stream of ``clip`` per system (WhisperLive loads its model on its first client), not recorded."""
    for system, server in servers.items():
        if system in not_runnable:
            continue
        try:
            row = await run_clip(system, server, clip, args)
        except (NotRunnable, OSError, websockets.WebSocketException) as exc:
            not_runnable[system] = f"warm-up stream failed: {exc}"
            continue
        if row["errors"]:
            console.print(f"  [red]{LABELS[system]} warm-up: {'; '.join(row['errors'])}[/red]")
        console.print(f"  {LABELS[system]}: warm-up stream done, text {row['kept_text']!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=SYSTEMS, help="(default: all)")
    parser.add_argument("--rounds", type=int, default=3, help="passes over the clips (default: %(default)s)")
    parser.add_argument("--clips", type=int, default=13, help="first N clips of en/MANIFEST.tsv (default: all 13)")
    parser.add_argument("--max-silence", type=float, default=15.0, help="most trailing silence, s (default: 15)")
    parser.add_argument("--chunk-ms", type=int, default=100, help="chunk length (default: 100)")
    parser.add_argument("--language", default="en", help="language every system is told (default: en)")
    parser.add_argument("--streams", type=int, nargs="*", default=[], help="concurrent-stream levels (default: none)")
    parser.add_argument("--duration", type=float, default=20.0, help="audio per stream in the ramp, s (default: 20)")
    parser.add_argument("--gap", type=float, default=1.5, help="silence after each clip in the ramp, s (default: 1.5)")
    parser.add_argument("--venvs", type=Path, default=VENVS_DIR, help="peers' virtual environments (%(default)s)")
    parser.add_argument("--data", type=Path, default=DATA, help="shared data folder (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=OUT, help="JSON results file (default: %(default)s)")
    parser.add_argument("--home", type=Path, default=None, help="voxgate home (default: VOXGATE_HOME or user cache)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="CPU threads of every server")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.clips < 1 or any(n < 1 for n in args.streams):
        parser.error("--rounds, --clips and --streams levels must be at least 1")
    args.systems = [s for s in SYSTEMS if s in args.systems]

    started = time.perf_counter()
    machine = machine_info(MACHINE_DISTS)
    settings = Settings(**({"home": args.home} if args.home is not None else {}))
    model_dir = materialize(resolve(MODEL_ID, settings.default_model), settings.home)
    clips = load_clips(args.data)[: args.clips]
    console.print(
        f"peers: {', '.join(LABELS[s] for s in args.systems)}; model {MODEL_ID} at {model_dir}; {len(clips)} clips x "
        f"{args.rounds} rounds; {args.chunk_ms} ms chunks in real time, up to {args.max_silence} s of trailing "
        f"silence; {args.threads} threads; streams {args.streams or 'off'}; loadavg at start "
        f"{machine['load_average_at_start']}"
    )
    reference_words(clips, model_dir, args.threads, args.language)

    not_runnable: dict[str, str] = {}
    pythons: dict[str, Path] = {}
    peers: dict[str, Any] = {}
    for system in args.systems:
        if system == "voxgate":
            continue
        try:
            pythons[system] = ensure_venv(system, args.venvs)
        except NotRunnable as exc:
            not_runnable[system] = f"install: {exc}"
            continue
        peers[system] = {
            "venv": str(args.venvs / system),
            "install": [list(step) for step in VENVS[system].steps],
            "versions": venv_versions(pythons[system], VENVS[system].dists),
            "pip_freeze": pip_freeze(pythons[system]),
        }
        console.print(f"  {LABELS[system]}: {peers[system]['versions']}")

    logs = Path(tempfile.mkdtemp(prefix="bench-peers-"))
    warm_clip = min(clips, key=lambda c: c.duration)
    servers = {
        s: make_server(s, pythons.get(s), model_dir, settings.home, warm_clip.path, args, logs)
        for s in args.systems
        if s not in not_runnable
    }
    results: dict[str, dict[str, Any]] = {s: {} for s in args.systems}
    idle: dict[str, int] = {}
    with running(servers, not_runnable):
        asyncio.run(warm_up(servers, warm_clip, args, not_runnable))
        for system, server in servers.items():
            if system not in not_runnable and server.rss is not None:
                idle[system] = tree_rss_bytes(server.pid)
                server.rss.take()
        rows = asyncio.run(run_rounds(servers, clips, args, not_runnable))
        peaks = {s: server.rss.take() if server.rss is not None else 0 for s, server in servers.items()}
        levels = asyncio.run(run_streams(servers, clips, args, not_runnable)) if args.streams else {}
    console.print(f"  server logs in {logs}")
    normalizer = EnglishTextNormalizer()
    for system in args.systems:
        result = results[system]
        result["command"] = servers[system].command if system in servers else None
        if system in peers:
            result["install"] = peers[system]
        if system in not_runnable:
            result["not_runnable"] = not_runnable[system]
        if rows.get(system):
            result["summary"] = summarise(rows[system], clips, normalizer, peaks[system], idle.get(system, 0))
            result["runs"] = rows[system]
        if system in levels:
            result["streams"] = levels[system]
            result["streams_held"] = streams_held(levels[system])
    print_table(results, not_runnable)
    wall = time.perf_counter() - started
    console.print(f"total wall time {wall:.0f} s; loadavg at end {loadavg()}")
    report = {
        **report_head("peers", wall, args.data),
        "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "model": {"id": MODEL_ID, "directory": str(model_dir)},
        "definitions": {
            "sent_at(t)": "client wall time at which the chunk holding stream position t was sent (for an end: the "
            "chunk holding the last sample before t); chunk k is sent at t0 + (k + 1) * chunk",
            "speech start / end": "first word start / last word end of an offline faster-whisper pass (beam 5, VAD, "
            "word timestamps) over the clip with the same model directory",
            "final": "the first message, after sent_at(speech end) and before the client's end of stream, after which "
            "the client holds more committed words than before, no uncommitted text, and (where the system dates its "
            f"committed text) committed text ending at most {END_SLACK_S} s before the speech end. voxgate: a final "
            "transcription; WhisperLiveKit: words moved from buffer_transcription into lines; WhisperLive: a segment "
            "with completed = true",
            "eos_to_final": "final arrival minus sent_at(speech end); missing when the system had not finalised "
            "before the client ended the stream",
            "close_to_final": "runs without an own final: the last growth of the committed text after the client's "
            "end of stream, minus the time it was sent",
            "first_partial": "first message holding any text minus sent_at(speech start)",
            "wer_stream": "corpus WER of the transcript the system's own client keeps at the end of the stream "
            "(WhisperLive: completed segments plus the last pending one), Whisper EnglishTextNormalizer + jiwer",
            "server_cpu_per_audio_s": "user + system CPU seconds of the server's process tree (/proc) while streaming, "
            "over the seconds of audio streamed (clip and trailing silence)",
            "peak_rss_mib": "largest sum of RSS over the server's process tree, sampled every 200 ms while streaming",
            "streams_held": f"highest concurrent-stream level before the first failure; a level passes when every "
            f"utterance has a final (as above, per utterance) with p95 < {FINAL_TARGET_S} s and no chunk was sent "
            f"more than {SEND_LAG_LIMIT_S} s late",
            "loadavg": "1-minute load average at the end of each run; figures carry the median over their runs",
        },
        "machine": machine,
        "systems": results,
    }
    write_report(args.out, report)
    console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
