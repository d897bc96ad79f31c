"""API keys: ``Authorization: Basic <key>`` (the reference API's form) or ``Bearer <key>`` (OpenAI's).

With no key configured the service is open, which is the default for a server bound to localhost.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from starlette.requests import HTTPConnection

from voxgate.config import Settings
from voxgate.errors import Unauthenticated

__all__ = ["check_credentials", "require_key"]


def check_credentials(headers: Mapping[str, str], settings: Settings) -> None:
    """Raise :class:`Unauthenticated` unless the headers carry one of the configured keys."""
    if not settings.api_keys:
        return
    value = headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    token = token.strip()
    if scheme.lower() not in ("basic", "bearer") or not token:
        raise Unauthenticated("missing API key: send 'Authorization: Basic <key>' or 'Authorization: Bearer <key>'")
    if not any(hmac.compare_digest(token.encode(), k.get_secret_value().encode()) for k in settings.api_keys):
        raise Unauthenticated("invalid API key")


async def require_key(conn: HTTPConnection) -> None:
    """FastAPI dependency for HTTP routes and WebSocket endpoints alike."""
    check_credentials(conn.headers, conn.app.state.settings)
