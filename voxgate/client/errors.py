"""Errors the client raises: what the server said in ``{"error": {"code", "message"}}``, or why it could not be reached.

The codes are the server's (``model_not_found``, ``unauthenticated``, ``invalid_argument``, ...; see
:mod:`voxgate.errors`), plus three of the client's own:

* ``connection_failed`` — the server could not be reached, or refused the WebSocket upgrade;
* ``connection_closed`` — the stream closed abnormally without an error frame;
* ``invalid_response`` — the server answered with something that is not the protocol.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from voxgate.protocol.ws import ErrorMessage

__all__ = ["VoxgateClientError", "VoxgateConnectionError", "error_from_body"]


class VoxgateClientError(Exception):
    """A request or stream failed: ``code`` and ``message`` as the server sent them.

    ``status`` is the HTTP status of a REST error, or the WebSocket close code of a stream error when known.
    """

    def __init__(self, code: str, message: str, *, status: int | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


class VoxgateConnectionError(VoxgateClientError):
    """The server could not be reached, or the connection broke without the server saying why."""

    def __init__(self, message: str, *, code: str = "connection_failed", status: int | None = None) -> None:
        super().__init__(code, message, status=status)


def error_from_body(body: Any, *, status: int | None = None) -> VoxgateClientError | None:
    """The error in a decoded ``{"error": {"code", "message"}}`` body, or None when ``body`` is not one."""
    if not isinstance(body, dict) or "error" not in body:
        return None
    try:
        parsed = ErrorMessage.model_validate(body)
    except ValidationError:
        return None
    return VoxgateClientError(parsed.error.code, parsed.error.message, status=status)
