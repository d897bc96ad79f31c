"""API keys: headers for every client, the ``token, <key>`` subprotocol pair for browsers' WebSockets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from websockets.asyncio.client import connect
from websockets.typing import Subprotocol

from tests.conftest import LiveServer
from tests.server.wsutil import (
    CLOSE_STREAM,
    END_TURN,
    PATH,
    Received,
    clip,
    config_frame,
    drain,
    expect_error,
    pcm16,
    send_all,
    send_pcm,
    silence,
    until_final,
)
from tests.speech import reference, wer
from voxgate.config import Settings
from voxgate.errors import Unauthenticated
from voxgate.server.app import create_app
from voxgate.server.auth import check_credentials, subprotocol_key
from voxgate.service import Service

KEY = "browser-key-123"


@pytest.mark.parametrize(
    ("offered", "key"),
    [
        (["token", KEY], KEY),
        (["token"], None),
        (["token", ""], None),
        (["bearer", KEY], None),
        ([KEY, "token"], None),
        (["token", KEY, "extra"], None),
        ([], None),
    ],
)
def test_subprotocol_key(offered: list[str], key: str | None) -> None:
    assert subprotocol_key(offered) == key


def test_check_credentials(settings: Settings) -> None:
    keyed = settings.model_copy(update={"api_keys": [SecretStr(KEY)]})
    check_credentials({}, settings)  # no keys configured: open
    check_credentials({"authorization": f"Basic {KEY}"}, keyed)
    check_credentials({"authorization": f"Bearer {KEY}"}, keyed)
    check_credentials({}, keyed, key=KEY)
    for headers, key in (({}, None), ({}, "wrong"), ({"authorization": "Basic wrong"}, KEY)):
        with pytest.raises(Unauthenticated):
            check_credentials(headers, keyed, key=key)  # a wrong header is not rescued by a subprotocol


@pytest.fixture(scope="module")
def keyed_server(settings: Settings, service: Service) -> Iterator[LiveServer]:
    with LiveServer(create_app(settings.model_copy(update={"api_keys": [SecretStr(KEY)]}), service=service)) as s:
        yield s


def browser_socket(server: LiveServer, key: str) -> connect:
    """What ``new WebSocket(url, ["token", key])`` sends: no Authorization header, two subprotocols."""
    return connect(server.ws_url + PATH, subprotocols=[Subprotocol("token"), Subprotocol(key)], open_timeout=10)


async def test_a_browser_stream_authenticates_with_the_token_subprotocol(keyed_server: LiveServer, data: Path) -> None:
    got = Received()
    async with browser_socket(keyed_server, KEY) as ws:
        assert ws.subprotocol == "token"  # a browser drops the socket unless the server picks one it offered
        await ws.send(config_frame(turnDetection={"mode": "manual"}))
        await send_pcm(ws, pcm16(clip(data / "en" / "spk1_snt2.wav"), silence(0.5)))
        await ws.send(END_TURN)
        final = await until_final(ws, got)
        await ws.send(CLOSE_STREAM)
        await drain(ws, got)
    assert got.close_code == 1000
    assert wer(reference(data, "en/spk1_snt2.wav"), final["transcript"]) <= 0.2


async def test_a_wrong_subprotocol_key_is_refused(keyed_server: LiveServer) -> None:
    async with browser_socket(keyed_server, "wrong") as ws:
        await send_all(ws, [config_frame()])  # the server may refuse before the config arrives
        error = await expect_error(ws, "unauthenticated", 1008)
    assert "wrong" not in error["message"]
