"""What a client-chosen URL may reach: the policy's checks, the pinned address, redirects, size and time limits."""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.jobs.localhttp import LocalHttp
from voxgate.errors import PayloadTooLarge
from voxgate.jobs.fetch import UrlPolicy, UrlRefused, fetch, post, public, resolve

OPEN = UrlPolicy(allow_http=True, allow_private=True)


@pytest.fixture(scope="module")
def files(data: Path) -> Iterator[LocalHttp]:
    with LocalHttp(data) as server:
        yield server


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("8.8.8.8", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("240.0.0.1", False),
        ("255.255.255.255", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("ff02::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:8.8.8.8", True),
    ],
)
def test_which_addresses_are_public(address: str, allowed: bool) -> None:
    assert public(ipaddress.ip_address(address)) is allowed


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://example.com/a.wav", "only https"),
        ("ftp://example.com/a.wav", "only https"),
        ("https://user:secret@example.com/a.wav", "credentials"),
        ("https:///a.wav", "no host"),
        ("https://127.0.0.1/a.wav", "not a public address"),
        ("https://localhost/a.wav", "not a public address"),
        ("https://[::1]:8443/a.wav", "not a public address"),
        ("https://nonexistent.invalid/a.wav", "cannot resolve"),
        ("https://example.com:99999/a.wav", "not a valid URL"),
    ],
)
async def test_refused_before_any_connection(url: str, why: str) -> None:
    with pytest.raises(UrlRefused, match=why):
        await resolve(url, UrlPolicy())


async def test_the_connection_goes_to_the_checked_address(files: LocalHttp) -> None:
    """A name is resolved once; the request goes to that address, the name in Host (what defeats DNS rebinding)."""
    target = await resolve(f"http://localhost:{files.port}/files/en/spk1_snt1.wav", OPEN)
    assert target.host == "localhost"
    assert target.address.is_loopback
    assert target.pinned().host == str(target.address)
    body = await fetch(f"http://localhost:{files.port}/files/en/spk1_snt1.wav", OPEN)
    assert body.startswith(b"RIFF")
    assert files.gets[-1].headers["Host"] == f"localhost:{files.port}"


async def test_redirects_statuses_and_size(files: LocalHttp) -> None:
    with pytest.raises(UrlRefused, match="redirect"):
        await fetch(f"{files.url}/redirect", OPEN)
    with pytest.raises(UrlRefused, match="HTTP 404"):
        await fetch(f"{files.url}/missing", OPEN)
    small = UrlPolicy(allow_http=True, allow_private=True, max_bytes=1000)
    with pytest.raises(PayloadTooLarge):
        await fetch(f"{files.url}/files/en/spk1_snt1.wav", small)


async def test_a_body_over_the_cap_without_a_length_is_cut_off() -> None:
    """A server that sends no Content-Length is stopped once the body passes the cap."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def endless() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            chunk = b"x" * 4096
            try:
                for _ in range(1000):
                    conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except OSError:
                pass  # the client hung up: what the test wants

    thread = threading.Thread(target=endless, daemon=True)
    thread.start()
    with pytest.raises(PayloadTooLarge):
        await fetch(f"http://127.0.0.1:{port}/", UrlPolicy(allow_http=True, allow_private=True, max_bytes=100_000))
    thread.join(timeout=30)
    listener.close()


async def test_the_total_time_is_bounded() -> None:
    """A server that accepts and then says nothing is given up on after the policy's timeout."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    policy = UrlPolicy(allow_http=True, allow_private=True, timeout=0.5)
    with pytest.raises(UrlRefused, match=r"longer than|ReadTimeout"):
        await fetch(f"http://127.0.0.1:{port}/", policy)
    listener.close()


async def test_post_reports_the_status(files: LocalHttp) -> None:
    files.statuses.append(503)
    assert await post(f"{files.url}/hook", b"{}", {"Content-Type": "application/json"}, OPEN) == 503
    assert await post(f"{files.url}/hook", b"{}", {}, OPEN) == 200
    assert files.received[-1].body == b"{}"
    with pytest.raises(UrlRefused, match="only https"):
        await post(f"{files.url}/hook", b"{}", {}, UrlPolicy())
