"""``voxgate``: serve, transcribe, models, stream, jobs. Flags map to :class:`Settings`; nothing else happens here."""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from voxgate.config import Settings
from voxgate.errors import VoxgateError
from voxgate.protocol.formats import to_srt, to_text, to_vtt
from voxgate.protocol.http import TranscribeResponse, normalize_language
from voxgate.protocol.ws import (
    EndOfTurnMessage,
    ResultMessage,
    ServerMessage,
    SpeechStartedMessage,
    SpeechStoppedMessage,
    StreamTranscription,
    TurnMode,
    UsageMessage,
    VoiceProfileMessage,
)
from voxgate.types import DiarizationOptions, Speakers, Transcript, TranscriptionOptions

app = typer.Typer(help="voxgate: self-hosted speech-to-text.", no_args_is_help=True, add_completion=False)
err = Console(stderr=True)
out = Console()


class OutputFormat(StrEnum):
    TXT = "txt"
    JSON = "json"
    SRT = "srt"
    VTT = "vtt"


def _settings(**overrides: Any) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default: 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: 8000).")] = None,
    model: Annotated[str | None, typer.Option(help="Default model id (default: whisper/base).")] = None,
    api_keys_file: Annotated[
        Path | None,
        typer.Option(help="Require API keys, read from this file (one per line). Or set VOXGATE_API_KEYS."),
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    ray: Annotated[
        bool,
        typer.Option(
            "--ray",
            help="Run on a Ray cluster started on this machine (Ray Serve: an ingress replica and a deployment per "
            "model; pip install 'voxgate[ray]'). For an existing cluster: serve deploy deploy/serve.yaml.",
        ),
    ] = False,
    ray_model: Annotated[
        list[str] | None,
        typer.Option("--ray-model", help="With --ray: a model to deploy (repeat it; default: the default model)."),
    ] = None,
    model_replicas: Annotated[int, typer.Option(help="With --ray: replicas of each model deployment.")] = 1,
) -> None:
    """Run the HTTP + WebSocket service."""
    import uvicorn

    from voxgate.server.app import create_app

    try:
        settings = _settings(host=host, port=port, default_model=model, api_keys_file=api_keys_file)
    except ValidationError as exc:
        err.print(f"[red]invalid settings: {exc.errors()[0]['msg']}[/red]")
        raise typer.Exit(2) from None
    problem = _unwritable(settings.home)
    if problem is not None:
        err.print(f"[red]voxgate home {settings.home} is not usable: {problem} (set VOXGATE_HOME)[/red]")
        raise typer.Exit(2)
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s:     %(name)s: %(message)s")
    if settings.console:
        shown = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
        shown = f"[{shown}]" if ":" in shown else shown
        logging.getLogger("voxgate").info("web console: http://%s:%d/", shown, settings.port)
    if ray:
        if api_keys_file is not None:
            os.environ["VOXGATE_API_KEYS_FILE"] = str(api_keys_file.resolve())
        _serve_on_ray(settings, ray_model or [settings.default_model], model_replicas)
        return
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=log_level)


def _serve_on_ray(settings: Settings, models: list[str], replicas: int) -> None:
    try:
        from voxgate.cluster.app import ClusterConfig, run_local
    except ImportError as exc:
        err.print(f"[red]--ray needs Ray Serve: pip install 'voxgate[ray]' ({exc})[/red]")
        raise typer.Exit(2) from None
    # The replicas read their settings from the environment, as this process did.
    os.environ["VOXGATE_DEFAULT_MODEL"] = settings.default_model
    os.environ["VOXGATE_HOME"] = str(settings.home)
    config = ClusterConfig(models=models, model_min_replicas=replicas, model_max_replicas=replicas)
    run_local(config, host=settings.host, port=settings.port)


def _unwritable(home: Path) -> str | None:
    """Why ``home`` cannot hold models (missing and not creatable, read-only, full), or None when it can."""
    try:
        home.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=home, prefix=".write-check-"):
            pass
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


@app.command()
def models() -> None:
    """List every model voxgate can serve."""
    from voxgate.service import Service

    service = Service(_settings(preload=[]))
    table = Table()
    table.add_column("id", no_wrap=True)  # the id is what users copy: never cut it
    for name in ("languages", "size", "source", "loaded", "default"):
        table.add_column(name)
    for m in service.list_models():
        langs = f"{len(m.languages)} (multilingual)" if m.multilingual else ", ".join(m.languages)
        ids = m.id + (f" (= {', '.join(m.aliases)})" if m.aliases else "")
        loaded = "yes" if m.loaded else "no"
        table.add_row(ids, langs, f"{m.size_bytes / 1e6:.0f} MB", m.source, loaded, "yes" if m.default else "")
    service.close()
    out.print(table)


def _render(transcript: Transcript, fmt: OutputFormat, model_id: str, speakers: Speakers | None = None) -> str:
    if fmt is OutputFormat.JSON:
        body = TranscribeResponse.of(transcript, model_id=model_id, words=True)
        if speakers is not None:
            body.add_speakers(transcript, speakers)
        return json.dumps(body.model_dump(by_alias=True), ensure_ascii=False, indent=2) + "\n"
    return {OutputFormat.TXT: to_text, OutputFormat.SRT: to_srt, OutputFormat.VTT: to_vtt}[fmt](transcript, speakers)


@app.command()
def transcribe(
    files: Annotated[list[Path], typer.Argument(help="Audio files (any format PyAV/FFmpeg reads).", exists=True)],
    model: Annotated[str | None, typer.Option(help="Model id (default: whisper/base).")] = None,
    language: Annotated[str | None, typer.Option(help="Language (BCP-47); omit to detect.")] = None,
    prompt: Annotated[
        list[str] | None, typer.Option("--prompt", "-p", help="Custom vocabulary term (repeatable).")
    ] = None,
    fmt: Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")] = OutputFormat.TXT,
    output_dir: Annotated[Path | None, typer.Option(help="Write FILE.<format> here instead of stdout.")] = None,
    diarize: Annotated[bool, typer.Option("--diarize", help="Tell the speakers apart (Speaker 1, 2, ...).")] = False,
    speakers: Annotated[
        int | None, typer.Option(min=1, max=20, help="How many speakers there are, when you know (implies --diarize).")
    ] = None,
) -> None:
    """Transcribe complete files, with a progress bar and a real-time-factor summary."""
    from voxgate.service import Service

    who: DiarizationOptions | None = None
    if speakers is not None:
        who = DiarizationOptions(min_speakers=speakers, max_speakers=speakers)
    elif diarize:
        who = DiarizationOptions()

    service = Service(_settings(default_model=model, preload=[]))
    options = TranscriptionOptions(language=normalize_language(language), prompts=tuple(prompt or ()))
    failures = 0
    try:
        err.print(f"loading {service.resolve(model).id} …")
        service.engine(model)
        for path in files:
            started = time.perf_counter()
            with Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                TimeElapsedColumn(), TimeRemainingColumn(), console=err, transient=True,
            ) as progress:  # fmt: skip
                task = progress.add_task(path.name, total=None)

                def report(done: float, total: float, task: Any = task, progress: Progress = progress) -> None:
                    progress.update(task, completed=done, total=total or None)

                try:
                    result = service.transcribe_file_sync(path, options, model, progress=report, diarize=who)
                except VoxgateError as exc:
                    err.print(f"[red]{path}: {exc.code}: {exc.message}[/red)")
                    failures += 1
                    continue
            wall = time.perf_counter() - started
            transcript = result.transcript
            text = _render(transcript, fmt, transcript.model_id, result.speakers)
            if output_dir is not None:
                output_dir.mkdir(parents=True, exist_ok=True)
                target = output_dir / f"{path.stem}.{fmt.value}"
                target.write_text(text, encoding="utf-8")
                err.print(f"wrote {target}")
            else:
                sys.stdout.write(text)
                sys.stdout.flush()
            rtf = wall / transcript.duration if transcript.duration else 0.0
            lang = f", language {transcript.language} ({transcript.language_probability or 0:.2f})"
            if result.speakers is not None:
                lang += f", {result.speakers.count} speaker{'s' if result.speakers.count != 1 else ''}"
            err.print(
                f"[dim]{path.name}: {transcript.duration:.1f} s audio in {wall:.1f} s wall, "
                f"real-time factor {rtf:.3f}{lang}[/dim]"
            )
    except VoxgateError as exc:
        err.print(f"[red]{exc.code}: {exc.message}[/red)")
        raise typer.Exit(2) from None
    finally:
        service.close()
    if failures:
        raise typer.Exit(1)


class _StreamPrinter:
    """Renders stream messages: partials in place on a TTY, finals one a line, speech events dim on stderr."""

    def __init__(self, *, json_lines: bool, tty: bool) -> None:
        self.json_lines = json_lines
        self.tty = tty
        self.partial = ""
        self.finals: set[int] = set()

    def show(self, message: ServerMessage) -> None:
        if isinstance(message, ResultMessage) and message.result.transcription.is_final:
            self.finals.add(message.result.transcription.turn_index)
        if self.json_lines:
            line = json.dumps(message.model_dump(by_alias=True, exclude_none=True), ensure_ascii=False)
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
            return
        if isinstance(message, ResultMessage):
            t = message.result.transcription
            if t.is_final:
                self.clear()
                sys.stdout.write(self._final_line(t) + "\n")
                sys.stdout.flush()
            else:
                self._draw_partial(t.transcript.strip())
            return
        if isinstance(message, VoiceProfileMessage):
            p = message.result.voice_profile
            tops = [f"{name} {labels[0].label} ({labels[0].confidence:.2f})" for name, labels in (
                ("language", p.language), ("emotion", p.emotion), ("gender", p.gender), ("age", p.age),
                ("pitch", p.pitch), ("style", p.vocal_style),
            ) if labels]  # fmt: skip
            note = f"voice profile ({p.scope}, turn {p.turn_index}): " + ", ".join(tops)
        elif isinstance(message, SpeechStartedMessage):
            e = message.result.speech_started
            note = f"speech started at {e.time_seconds:.2f} s (turn {e.turn_index}, p={e.confidence:.2f})"
        elif isinstance(message, SpeechStoppedMessage):
            s = message.result.speech_stopped
            note = f"speech ended at {s.time_seconds:.2f} s (turn {s.turn_index}, {s.silence_duration_ms} ms silent)"
        elif isinstance(message, UsageMessage):
            u = message.result.usage
            note = f"usage: {u.transcribed_audio_ms} ms of audio, {u.model_id}"
        elif isinstance(message, EndOfTurnMessage):
            end = message.end_of_turn
            why = end.reason.value + (f", p={end.probability:.2f}" if end.probability is not None else "")
            note = f"end of turn {end.turn_index} at {end.time_seconds:.2f} s ({why})"
        else:  # errors are raised by the client before they reach here
            return
        self.note(note)

    def note(self, text: str, style: str = "dim") -> None:
        """A line on stderr, without tearing the partial shown on stdout."""
        partial = self.partial
        self.clear()
        err.print(text, style=style, markup=False, highlight=False, soft_wrap=True)
        if partial:
            self._draw_partial(partial)

    def clear(self) -> None:
        """Erase the partial shown in place, if any."""
        if self.partial and self.tty:
            sys.stdout.write("\r\x1b[2K")
            sys.stdout.flush()
        self.partial = ""

    @staticmethod
    def _final_line(t: StreamTranscription) -> str:
        span = f"{t.start_time_seconds:.2f}\u2013{t.end_time_seconds:.2f} s"
        return f"[turn {t.turn_index}  {span}] {t.transcript.strip()}"

    def _draw_partial(self, text: str) -> None:
        self.partial = text
        if not self.tty or not text:
            return
        import shutil

        width = max(20, shutil.get_terminal_size().columns - 1)
        shown = text if len(text) <= width else "\u2026" + text[-(width - 1) :]
        sys.stdout.write(f"\r\x1b[2K\x1b[2m{shown}\x1b[0m")
        sys.stdout.flush()


@app.command()
def stream(
    file: Annotated[
        Path, typer.Argument(help="Audio file (any format PyAV/FFmpeg reads).", exists=True, dir_okay=False)
    ],
    url: Annotated[str, typer.Option(help="Server URL (http(s):// or ws(s)://).")] = "http://127.0.0.1:8000",
    model: Annotated[str | None, typer.Option(help="Model id (default: the server's).")] = None,
    language: Annotated[str | None, typer.Option(help="Language (BCP-47); omit to detect.")] = None,
    realtime: Annotated[
        bool, typer.Option("--realtime/--no-realtime", help="Pace the audio at real time, as a microphone would.")
    ] = True,
    api_key: Annotated[str | None, typer.Option(help="API key, sent as 'Authorization: Basic <key>'.")] = None,
    turn_mode: Annotated[
        TurnMode | None, typer.Option(help="How turns end (default: the server's, semantic).", case_sensitive=False)
    ] = None,
    json_lines: Annotated[bool, typer.Option("--json", help="Print every server message as one JSON line.")] = False,
) -> None:
    """Stream a file to a running server over the WebSocket API, printing partials and finals as they arrive."""
    import asyncio

    from voxgate.client import VoxgateClientError, stream_file, stream_url

    try:
        endpoint = stream_url(url)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--url") from None
    printer = _StreamPrinter(json_lines=json_lines, tty=sys.stdout.isatty())
    sent = 0.0

    def progress(seconds: float) -> None:
        nonlocal sent
        sent = seconds

    async def run() -> None:
        async for message in stream_file(
            endpoint,
            file,
            realtime=realtime,
            api_key=api_key,
            model_id=model,
            language=language,
            turn_detection={"mode": turn_mode} if turn_mode is not None else None,
            on_progress=progress,
        ):
            printer.show(message)

    started = time.perf_counter()
    try:
        asyncio.run(run())
    except (VoxgateClientError, VoxgateError) as exc:
        printer.note(f"error: {exc.code}: {exc.message}", style="red")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        printer.note("interrupted", style="red")
        raise typer.Exit(130) from None
    finally:
        printer.clear()
    wall = time.perf_counter() - started
    turns = len(printer.finals)
    err.print(
        f"{turns} turn{'s' if turns != 1 else ''}, {sent:.1f} s audio in {wall:.1f} s wall",
        style="dim",
        highlight=False,
    )


# -- async jobs --------------------------------------------------------------------------------------------------

jobs_app = typer.Typer(help="Async jobs on a running server: submit files, follow them, fetch their results.")
app.add_typer(jobs_app, name="jobs")

_URL = Annotated[str, typer.Option(help="Server URL.")]
_KEY = Annotated[
    str | None, typer.Option(help="API key, sent as 'Authorization: Basic <key>'.", envvar="VOXGATE_API_KEY")
]
_NAME = Annotated[str, typer.Argument(help="The operation's name (operations/<id>) or its id.")]
_DEFAULT_URL = "http://127.0.0.1:8000"


class _JobsClient:
    """The job routes of one server, over httpx; errors become a red line and exit code 1."""

    def __init__(self, url: str, api_key: str | None) -> None:
        import httpx

        headers = {"Authorization": f"Basic {api_key}"} if api_key else {}
        self.http = httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=120.0)

    def __enter__(self) -> _JobsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    @staticmethod
    def name(value: str) -> str:
        return value if value.startswith("operations/") else f"operations/{value}"

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        import httpx

        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            err.print(f"[red]cannot reach {self.http.base_url}: {exc}[/red]")
            raise typer.Exit(1) from None
        try:
            body = response.json()
        except ValueError:
            body = {"error": {"code": "http_error", "message": f"HTTP {response.status_code}"}}
        if response.status_code >= 400:
            error = body.get("error", {}) if isinstance(body, dict) else {}
            err.print(f"[red]{error.get('code', 'error')}: {error.get('message', response.status_code)}[/red]")
            raise typer.Exit(1)
        return body

    def operation(self, name: str) -> dict[str, Any]:
        op: dict[str, Any] = self.call("GET", f"/lro/v1alpha/{self.name(name)}")
        return op

    def wait(self, name: str, *, quiet: bool = False, interval: float = 0.5) -> dict[str, Any]:
        """Poll until done, with a progress bar on stderr."""
        with Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(), console=err, transient=True, disable=quiet,
        ) as progress:  # fmt: skip
            task = progress.add_task(self.name(name), total=100)
            while True:
                op = self.operation(name)
                progress.update(task, completed=op["metadata"]["progressPercent"])
                progress.update(task, description=f"{self.name(name)} {op['metadata']['state'].lower()}")
                if op["done"]:
                    return op
                time.sleep(interval)

    def result(self, op: dict[str, Any]) -> dict[str, Any]:
        if "error" in op:
            err.print(f"[red]{op['name']}: {op['error']['code']}: {op['error']['message']}[/red]")
            raise typer.Exit(1)
        import httpx

        uri = op["response"]["resultUri"]
        # The link is signed: sent as it is (with the key too, harmless, when it points at this server).
        same = httpx.URL(uri).netloc == self.http.base_url.netloc
        document: dict[str, Any] = self.call("GET", uri) if same else httpx.get(uri, timeout=120.0).json()
        return document


def _print_result(document: dict[str, Any], fmt: OutputFormat) -> None:
    if fmt is OutputFormat.JSON:
        sys.stdout.write(json.dumps(document, ensure_ascii=False, indent=2) + "\n")
    elif fmt is OutputFormat.TXT:
        sys.stdout.write(document["transcript"].strip() + "\n")
    else:
        from voxgate.types import Segment

        segments = tuple(
            Segment(s["transcript"], int(s["startTimeMs"]) / 1000, int(s["endTimeMs"]) / 1000)
            for s in document["segments"]
        )
        duration = document["usage"]["transcribedAudioMs"] / 1000
        transcript = Transcript(segments=segments, duration=duration, language=document.get("language"))
        sys.stdout.write((to_srt if fmt is OutputFormat.SRT else to_vtt)(transcript, None))
    sys.stdout.flush()


@jobs_app.command("submit")
def jobs_submit(
    file: Annotated[Path | None, typer.Argument(help="Audio file to upload.", exists=True, dir_okay=False)] = None,
    uri: Annotated[str | None, typer.Option(help="Audio URL for the server to fetch, instead of a file.")] = None,
    url: _URL = _DEFAULT_URL,
    api_key: _KEY = None,
    model: Annotated[str | None, typer.Option(help="Model id (default: the server's).")] = None,
    language: Annotated[str | None, typer.Option(help="Language (BCP-47); omit to detect.")] = None,
    callback_url: Annotated[str | None, typer.Option(help="URL the server POSTs the finished operation to.")] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait for the job and print its result.")] = False,
    fmt: Annotated[
        OutputFormat, typer.Option("--format", "-f", help="Result format (with --wait).")
    ] = OutputFormat.TXT,
) -> None:
    """Queue a file (uploaded) or a URL (fetched by the server); prints the operation's name."""
    if (file is None) == (uri is None):
        raise typer.BadParameter("give a FILE or --uri, not both", param_hint="FILE")
    config: dict[str, Any] = {k: v for k, v in (("modelId", model), ("language", language)) if v is not None}
    with _JobsClient(url, api_key) as client:
        if file is not None:
            data: dict[str, str] = {"transcribeConfig": json.dumps(config)}
            if callback_url:
                data["callbackUrl"] = callback_url
            with file.open("rb") as f:
                op = client.call("POST", "/stt/v1/transcribe:async", data=data, files={"file": (file.name, f)})
        else:
            body: dict[str, Any] = {"transcribeConfig": config, "audioUri": uri}
            if callback_url:
                body["callbackUrl"] = callback_url
            op = client.call("POST", "/stt/v1/transcribe:async", json=body)
        if not wait:
            sys.stdout.write(op["name"] + "\n")
            return
        err.print(op["name"], style="dim", highlight=False)
        document = client.result(client.wait(op["name"]))
    _print_result(document, fmt)


@jobs_app.command("status")
def jobs_status(name: _NAME, url: _URL = _DEFAULT_URL, api_key: _KEY = None) -> None:
    """Print the operation (JSON): state, progress, and its result link or error once done."""
    with _JobsClient(url, api_key) as client:
        op = client.operation(name)
    sys.stdout.write(json.dumps(op, indent=2) + "\n")


@jobs_app.command("wait")
def jobs_wait(name: _NAME, url: _URL = _DEFAULT_URL, api_key: _KEY = None) -> None:
    """Follow a job with a progress bar until it is done; exit code 1 if it failed or was cancelled."""
    with _JobsClient(url, api_key) as client:
        op = client.wait(name)
    state = op["metadata"]["state"]
    if "error" in op:
        err.print(f"[red]{op['name']}: {state}: {op['error']['code']}: {op['error']['message']}[/red]")
        raise typer.Exit(1)
    sys.stdout.write(f"{op['name']} {state}\n")


@jobs_app.command("result")
def jobs_result(
    name: _NAME,
    url: _URL = _DEFAULT_URL,
    api_key: _KEY = None,
    fmt: Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")] = OutputFormat.JSON,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for the job first.")] = True,
) -> None:
    """Print a finished job's result: the reference's document (json), or its text, SRT or VTT."""
    with _JobsClient(url, api_key) as client:
        op = client.wait(name) if wait else client.operation(name)
        if not op["done"]:
            err.print(f"[red]{op['name']} is {op['metadata']['state'].lower()}, not done[/red]")
            raise typer.Exit(1)
        document = client.result(op)
    _print_result(document, fmt)


@jobs_app.command("list")
def jobs_list(
    url: _URL = _DEFAULT_URL,
    api_key: _KEY = None,
    limit: Annotated[int, typer.Option(min=1, help="How many, newest first.")] = 50,
    json_out: Annotated[bool, typer.Option("--json", help="Print the operations as JSON.")] = False,
) -> None:
    """The jobs this key submitted, newest first."""
    ops: list[dict[str, Any]] = []
    token = ""
    with _JobsClient(url, api_key) as client:
        while len(ops) < limit:
            params = {"pageSize": min(200, limit - len(ops)), "pageToken": token}
            page = client.call("GET", "/lro/v1alpha/operations", params=params)
            ops += page["operations"]
            token = page.get("nextPageToken", "")
            if not token:
                break
    if json_out:
        sys.stdout.write(json.dumps(ops, indent=2) + "\n")
        return
    table = Table()
    for column in ("name", "state", "progress", "created", "error"):
        table.add_column(column, no_wrap=column == "name")
    for op in ops:
        meta = op["metadata"]
        problem = f"{op['error']['code']}" if "error" in op else ""
        table.add_row(op["name"], meta["state"], f"{meta['progressPercent']}%", meta["createTime"], problem)
    out.print(table)


@jobs_app.command("cancel")
def jobs_cancel(name: _NAME, url: _URL = _DEFAULT_URL, api_key: _KEY = None) -> None:
    """Cancel a queued or running job."""
    with _JobsClient(url, api_key) as client:
        op = client.call("POST", f"/lro/v1alpha/{client.name(name)}:cancel")
    sys.stdout.write(f"{op['name']} {op['metadata']['state']}\n")


if __name__ == "__main__":
    app()
