"""A real HTTP server on a loopback port, in a thread: serves files, redirects, and records what is posted to it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class LocalHttp:
    """``GET /files/<relpath>`` serves ``root``; ``GET /redirect`` answers 302; ``GET /missing`` 404; ``POST`` anywhere
    is recorded in ``received`` and answered with the next of ``statuses`` (200 once they run out)."""

    root: Path
    statuses: list[int] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    gets: list[Received] = field(default_factory=list)
    on_post: Callable[[Received], None] | None = None

    def __post_init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                owner.gets.append(Received(self.path, dict(self.headers.items()), b""))
                if self.path.startswith("/files/"):
                    target = (owner.root / self.path.removeprefix("/files/")).resolve()
                    if owner.root.resolve() in target.parents and target.is_file():
                        body = target.read_bytes()
                        self.send_response(200)
                        self.send_header("Content-Length", str(len(body)))
                        self.end_headers()
                        self.wfile.write(body)
                        return
                if self.path == "/redirect":
                    self.send_response(302)
                    self.send_header("Location", "/files/en/jfk.flac")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                got = Received(self.path, dict(self.headers.items()), self.rfile.read(length))
                owner.received.append(got)
                if owner.on_post is not None:
                    owner.on_post(got)
                self.send_response(owner.statuses.pop(0) if owner.statuses else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LocalHttp:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
