"""API keys: ``Authorization: Basic <key>`` (the reference API's form) or ``Bearer <key>`` (OpenAI's).

Browsers cannot set headers on a WebSocket upgrade, so a stream may instead offer the two subprotocols
``token, <key>`` (``new WebSocket(url, ["token", key])``, as Deepgram's browser clients do); the server then accepts
with the ``token`` subprotocol. With no key configured the service is open, the default for a server on localhost.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence

from starlette.requests import HTTPConnection

from voxgate.config import Settings
from voxgate.errors import Unauthenticated

__all__ = ["TOKEN_SUBPROTOCOL", "check_credentials", "key_owner", "presented_key", "require_key", "subprotocol_key"]

TOKEN_SUBPROTOCOL = "token"


def subprotocol_key(subprotocols: Sequence[str]) -> str | None:
    """The key a browser sent as ``Sec-WebSocket-Protocol: token, <key>``, if it did."""
    if len(subprotocols) == 2 and subprotocols[0] == TOKEN_SUBPROTOCOL and subprotocols[1]:
        return subprotocols[1]
    return None


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key in an ``Authorization: Basic|Bearer <key>`` header, if there is one (checked or not)."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    token = token.strip()
    return token if scheme.lower() in ("basic", "bearer") and token else None


def key_owner(headers: Mapping[str, str], settings: Settings) -> str:
    """Who owns what a request creates (an async job): a digest of its key, or "" when the server has no keys (one
    open service, one owner). Call after :func:`check_credentials`."""
    key = presented_key(headers) if settings.api_keys else None
    return hashlib.sha256(key.encode()).hexdigest()[:32] if key else ""


def check_credentials(headers: Mapping[str, str], settings: Settings, *, key: str | None = None) -> None:
    """Raise :class:`Unauthenticated` unless the headers (or ``key``, from a subprotocol) carry a configured key."""
    if not settings.api_keys:
        return
    value = headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    token = token.strip()
    if not (scheme.lower() in ("basic", "bearer") and token):
        token = key or ""
    if not token:
        raise Unauthenticated(
            "missing API key: send 'Authorization: Basic <key>' or 'Authorization: Bearer <key>' "
            "(browsers: the WebSocket subprotocols 'token', '<key>')"
        )
    if not any(hmac.compare_digest(token.encode(), k.get_secret_value().encode()) for k in settings.api_keys):
        raise Unauthenticated("invalid API key")


async def require_key(conn: HTTPConnection) -> None:
    """FastAPI dependency for HTTP routes and WebSocket endpoints alike."""
    check_credentials(conn.headers, conn.app.state.settings)
