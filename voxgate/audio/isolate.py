"""Decoding in worker processes, so that a native crash (or hang) in FFmpeg or PyAV costs one request, not the server.

A small pool of warm workers: fresh interpreters (``python -c``; never a fork of the server's threaded process, and
never a re-import of its ``__main__`` as multiprocessing's spawn would do), started on first use and kept. A worker
serves one input at a time over a socket: the parent sends the input (bytes, or a path the worker opens itself) and
asks for chunks one by one, so a decode still streams with at most one chunk in flight. A worker that dies, or that
answers nothing for ``_REPLY_TIMEOUT`` seconds, is killed and replaced, and the request gets
:class:`AudioDecodeError`.
"""

from __future__ import annotations

import atexit
import importlib
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from voxgate.errors import AudioDecodeError, ResourceExhausted, VoxgateError
from voxgate.types import Audio

__all__ = ["isolated_iter_decode", "isolated_probe"]

_REPLY_TIMEOUT = 120.0
"""Seconds a worker may take to answer one request (a probe, or one chunk): far above any real decode."""

_MAX_WORKERS = 32
"""Workers at most (one per input being decoded: a file transcription holds its worker while it reads the file
window by window); a request waits for a free one past that."""

_ACQUIRE_TIMEOUT = 60.0
"""Seconds a request waits for a free worker before it is refused with ``resource_exhausted``."""

_MAX_IDLE = 2
"""Idle workers kept warm (a cold one costs ~0.15 s and ~50 MB); more are ended when their decode is done."""


def _main() -> None:
    """Entry point of a worker process: serve the socket passed as its one argument."""
    _serve(Connection(int(sys.argv[1])))


def _serve(conn: Connection) -> None:
    """A worker's loop: one request at a time until the pipe closes."""
    local = importlib.import_module("voxgate.audio.decode")  # the package re-exports a function of that name

    while True:
        try:
            op, path, options = conn.recv()
            source: bytes | Path = Path(path) if path is not None else conn.recv_bytes()
        except (EOFError, OSError):
            return
        if op == "probe":
            try:
                conn.send(("info", local.probe(source, limits=options["limits"], isolated=False)))
            except Exception as exc:
                conn.send(("error", _portable(exc)))
            continue
        chunks = local.iter_decode(source, isolated=False, **options)
        while True:
            try:
                command = conn.recv()
            except (EOFError, OSError):
                return
            if command == "stop":
                chunks.close()
                conn.send(("stopped", None))
                break
            try:
                conn.send(("chunk", next(chunks)))
            except StopIteration:
                conn.send(("end", None))
                break
            except Exception as exc:
                conn.send(("error", _portable(exc)))
                break


def _portable(exc: Exception) -> Exception:
    """``exc`` if it crosses a pipe as itself, else an :class:`AudioDecodeError` saying what it was."""
    if isinstance(exc, VoxgateError | ValueError):
        return exc
    return AudioDecodeError(f"could not decode audio: {type(exc).__name__}: {exc}")


class _Worker:
    def __init__(self) -> None:
        mine, theirs = socket.socketpair()
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        code = "from voxgate.audio.isolate import _main; _main()"
        with theirs:
            self.process = subprocess.Popen(
                [sys.executable, "-c", code, str(theirs.fileno())], pass_fds=[theirs.fileno()], env=env
            )
        self.conn = Connection(mine.detach())

    def send(self, message: Any, data: bytes | None = None) -> None:
        try:
            self.conn.send(message)
            if data is not None:
                self.conn.send_bytes(data)
        except (OSError, ValueError) as exc:
            raise self._failed("crashed") from exc

    def receive(self) -> tuple[str, Any]:
        try:
            if not self.conn.poll(_REPLY_TIMEOUT):
                raise self._failed("timed out")
            reply: tuple[str, Any] = self.conn.recv()
        except (EOFError, OSError) as exc:
            raise self._failed("crashed") from exc
        return reply

    def _failed(self, what: str) -> AudioDecodeError:
        code = self.process.poll()
        self.kill()
        detail = f" (exit code {code})" if code is not None else ""
        return AudioDecodeError(f"could not decode audio: the decoder {what}{detail}")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(5)
        self.conn.close()

    @property
    def healthy(self) -> bool:
        return not self.conn.closed and self.process.poll() is None


class _Pool:
    def __init__(self, size: int) -> None:
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(size)
        self._all: list[_Worker] = []

    def acquire(self) -> _Worker:
        if not self._slots.acquire(timeout=_ACQUIRE_TIMEOUT):
            raise ResourceExhausted(f"all {_MAX_WORKERS} audio decoders are busy; try again shortly")
        try:
            with self._lock:
                while self._idle:
                    worker = self._idle.pop()
                    if worker.healthy:
                        return worker
                    worker.kill()
                self._all = [w for w in self._all if w.healthy]
                worker = _Worker()
                self._all.append(worker)
                return worker
        except BaseException:
            self._slots.release()
            raise

    def close(self) -> None:
        """End every worker (at exit; a worker also ends by itself when its socket closes)."""
        with self._lock:
            for worker in self._all:
                worker.kill()
            self._all, self._idle = [], []

    def pids(self) -> list[int]:
        """Process ids of the live workers, busy or idle."""
        with self._lock:
            return [w.process.pid for w in self._all if w.healthy]

    def release(self, worker: _Worker) -> None:
        with self._lock:
            if worker.healthy and len(self._idle) < _MAX_IDLE:
                self._idle.append(worker)
            else:
                worker.kill()
        self._slots.release()


_POOL = _Pool(_MAX_WORKERS)
atexit.register(_POOL.close)


def _request(worker: _Worker, op: str, source: bytes | Path, options: dict[str, Any]) -> None:
    if isinstance(source, Path):
        worker.send((op, os.fspath(source), options))
    else:
        worker.send((op, None, options), bytes(source))


def _unwrap(reply: tuple[str, Any]) -> Any:
    kind, value = reply
    if kind == "error":
        raise value
    return value


def isolated_probe(source: bytes | Path, options: dict[str, Any]) -> Any:
    """:func:`voxgate.audio.decode.probe` in a worker."""
    worker = _POOL.acquire()
    try:
        _request(worker, "probe", source, options)
        return _unwrap(worker.receive())
    finally:
        _POOL.release(worker)


def isolated_iter_decode(source: bytes | Path, options: dict[str, Any]) -> Iterator[Audio]:
    """:func:`voxgate.audio.decode.iter_decode` in a worker, chunk by chunk as they are asked for."""
    worker = _POOL.acquire()
    finished = False
    try:
        _request(worker, "decode", source, options)
        while True:
            worker.send("next")
            kind, value = worker.receive()
            if kind == "end":
                finished = True
                return
            if kind == "error":
                finished = True
                raise value
            yield value
    finally:
        if not finished and worker.healthy:
            try:
                worker.send("stop")
                worker.receive()
            except AudioDecodeError:
                pass
        _POOL.release(worker)
