"""Shared fixtures: the real test audio, one real service (packaged models, loaded once), a live server."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.speech import DATA
from voxgate.config import Settings
from voxgate.server.app import create_app
from voxgate.service import Service


@pytest.fixture(scope="session")
def data() -> Path:
    """``tests/data``: real speech with reference transcripts, carried in the repository (read-only)."""
    return DATA


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(home=tmp_path_factory.mktemp("voxgate-home"), preload=[], cpu_threads=2)


@pytest.fixture(scope="session")
def settings_env(settings: Settings) -> dict[str, str]:
    """The session settings as environment variables, for the CLI."""
    return {"VOXGATE_HOME": str(settings.home), "VOXGATE_CPU_THREADS": str(settings.cpu_threads)}


@pytest.fixture(scope="session")
def service(settings: Settings) -> Iterator[Service]:
    svc = Service(settings)
    yield svc
    svc.close()


@pytest.fixture(scope="session")
def app(settings: Settings, service: Service) -> FastAPI:
    return create_app(settings, service=service)


@pytest.fixture(scope="session")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False, base_url="http://127.0.0.1") as c:
        yield c


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class LiveServer:
    """uvicorn serving an app on a loopback port in a background thread."""

    def __init__(self, app: FastAPI) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", ws="websockets-sansio")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("live server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture(scope="session")
def live_server(app: FastAPI) -> Iterator[LiveServer]:
    with LiveServer(app) as server:
        yield server
