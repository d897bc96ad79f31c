"""Tests for :mod:`voxgate.client` against the real live server, and shared helpers for them (and the CLI's)."""

from __future__ import annotations

import socket

TINY = "whisper/tiny.en"


def closed_port_url() -> str:
    """An http:// URL on loopback where nothing listens (connections are refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
