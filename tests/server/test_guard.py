"""Who may reach the service: Host names (DNS rebinding), browser Origins (other web pages), operator pages."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from tests.conftest import LiveServer
from tests.server.wsutil import config_frame, expect_error, open_stream
from voxgate.config import Settings
from voxgate.server.app import create_app
from voxgate.server.guard import host_name
from voxgate.service import Service

KEY = "guard-key-42"


@pytest.fixture
def make(settings: Settings, service: Service) -> Iterator[Any]:
    """``make(**settings)``: a TestClient on an app with those settings (the session service: models loaded once)."""
    clients: list[TestClient] = []

    def build(**changes: Any) -> TestClient:
        client = TestClient(
            create_app(settings.model_copy(update=changes), service=service), base_url="http://127.0.0.1"
        )
        clients.append(client.__enter__())
        return client

    yield build
    for client in clients:
        client.__exit__(None, None, None)


@pytest.mark.parametrize(
    ("header", "name"),
    [("127.0.0.1:8000", "127.0.0.1"), ("[::1]:8000", "::1"), ("LocalHost", "localhost"), ("example.com", "example.com"),
     ("[::1", ""), ("a:b:c", "a:b:c")],
)  # fmt: skip
def test_host_name(header: str, name: str) -> None:
    assert host_name(header) == name


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost:8000", "[::1]:8000", "127.0.0.1"])
def test_loopback_names_are_answered(make: Any, host: str) -> None:
    assert make().get("/healthz", headers={"host": host}).status_code == 200


@pytest.mark.parametrize("host", ["attacker.example:8000", "127.0.0.1.attacker.example", "", "localhost.evil"])
def test_other_host_names_are_refused(make: Any, host: str) -> None:
    """A page whose DNS name was rebound to 127.0.0.1 still sends its own name as Host."""
    r = make().post("/stt/v1/transcribe", headers={"host": host}, json={})
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "permission_denied"
    assert "VOXGATE_ALLOWED_HOSTS" in r.json()["error"]["message"]


def test_the_operator_names_more_hosts(make: Any) -> None:
    client = make(allowed_hosts=["stt.internal"])
    assert client.get("/healthz", headers={"host": "stt.internal:8000"}).status_code == 200
    assert client.get("/healthz", headers={"host": "other.internal"}).status_code == 403
    assert make(allowed_hosts=["*"]).get("/healthz", headers={"host": "anything.example"}).status_code == 200


def test_every_interface_with_no_names_answers_any_host(make: Any) -> None:
    assert make(host="0.0.0.0").get("/healthz", headers={"host": "10.1.2.3:8000"}).status_code == 200
    assert make(host="0.0.0.0", allowed_hosts=["10.1.2.3"]).get("/healthz", headers={"host": "x"}).status_code == 403


def test_other_web_pages_are_refused(make: Any) -> None:
    client = make()
    r = client.post("/stt/v1/transcribe", headers={"origin": "https://attacker.example"}, json={})
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "permission_denied"
    # The service's own pages (the console) and clients that are not browsers (no Origin) pass the guard.
    assert client.get("/stt/v1/models", headers={"origin": "http://127.0.0.1"}).status_code == 200
    assert client.get("/stt/v1/models").status_code == 200
    assert client.get("/stt/v1/models", headers={"origin": "http://127.0.0.1:9999"}).status_code == 403


def test_the_operator_allows_origins(make: Any) -> None:
    client = make(allowed_origins=["https://app.example.com/"])
    assert client.get("/stt/v1/models", headers={"origin": "https://app.example.com"}).status_code == 200
    assert client.get("/stt/v1/models", headers={"origin": "https://app.example.org"}).status_code == 403
    assert make(allowed_origins=["*"]).get("/stt/v1/models", headers={"origin": "null"}).status_code == 200


@pytest.mark.parametrize("path", ["/metrics", "/docs", "/redoc", "/openapi.json"])
def test_operator_pages_need_a_key_when_keys_are_set(make: Any, path: str) -> None:
    open_client = make()
    assert open_client.get(path).status_code == 200
    keyed = make(api_keys=[SecretStr(KEY)])
    r = keyed.get(path)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthenticated"
    assert keyed.get(path, headers={"authorization": f"Bearer {KEY}"}).status_code == 200


def test_metrics_can_be_left_to_a_scraper(make: Any) -> None:
    client = make(api_keys=[SecretStr(KEY)], metrics_public=True)
    assert client.get("/metrics").status_code == 200
    assert client.get("/openapi.json").status_code == 401


async def test_a_stream_from_another_web_page_is_refused(live_server: LiveServer) -> None:
    async with open_stream(live_server, headers={"Origin": "https://attacker.example"}) as ws:
        error = await expect_error(ws, "permission_denied", 1008)  # refused at once, before any message
    assert "attacker.example" in error["message"]


async def test_a_stream_from_the_console_origin_is_served(live_server: LiveServer) -> None:
    async with open_stream(live_server, headers={"Origin": live_server.url}) as ws:
        await ws.send(config_frame())
        await ws.send('{"closeStream": {}}')
        async for _ in ws:
            pass
        assert ws.close_code == 1000


def test_keys_come_from_a_file(tmp_path: Any, settings: Settings) -> None:
    keys = tmp_path / "keys"
    keys.write_text("# the team's keys\nalpha\n\n  beta  \n", encoding="utf-8")
    loaded = Settings(home=settings.home, api_keys_file=keys)
    assert [k.get_secret_value() for k in loaded.api_keys] == ["alpha", "beta"]
    assert len(loaded.model_copy(update={"port": 1}).api_keys) == 2  # read once, not again on a copy
    empty = tmp_path / "empty"
    empty.write_text("# nothing\n", encoding="utf-8")
    with pytest.raises(ValueError, match="holds no key"):
        Settings(api_keys_file=empty)
    with pytest.raises(ValueError, match="cannot read"):
        Settings(api_keys_file=tmp_path / "missing")
