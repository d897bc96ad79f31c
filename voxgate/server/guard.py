"""Who may reach the service at all, checked before any route runs.

* **Host**: the ``Host`` header must name this server (loopback names, the address it is bound to, or the names in
  ``VOXGATE_ALLOWED_HOSTS``). A web page on another site whose DNS name is rebound to 127.0.0.1 sends its own name as
  Host and is refused, so it cannot drive an open local service (DNS rebinding).
* **Origin**: a browser says which page sends a request or opens a stream. Only the service's own pages (the console:
  the Origin's host is the Host) and the origins in ``VOXGATE_ALLOWED_ORIGINS`` may; requests without an Origin
  (curl, SDKs, servers) are not browsers and pass. Without this any web page could open streams on a local service.
* **Operator pages**: with API keys set, ``/metrics`` (unless ``VOXGATE_METRICS_PUBLIC``) and the API docs
  (``/docs``, ``/redoc``, ``/openapi.json``) need a key like every other route.

Refusals are the usual error JSON (HTTP 403 ``permission_denied`` / 401 ``unauthenticated``); a refused stream is
accepted, told why, and closed with 1008, like a stream with a wrong key.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from voxgate.config import Settings
from voxgate.errors import PermissionDenied, VoxgateError
from voxgate.server.auth import check_credentials

__all__ = ["OPERATOR_PATHS", "Guard", "host_name"]

log = logging.getLogger(__name__)

OPERATOR_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"})
_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
_WILDCARD = frozenset({"", "0.0.0.0", "::"})


def host_name(host: str) -> str:
    """The name in a ``Host`` header or an origin's netloc, without the port (``[::1]:8000`` → ``::1``), lower case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else ""
    name, _, port = host.rpartition(":")
    return name if name and port.isdigit() else host


class Guard:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        listed = {host_name(h) for h in settings.allowed_hosts}
        bound = host_name(settings.host)
        self.any_host = "*" in settings.allowed_hosts or (bound in _WILDCARD and not listed)
        self.hosts = frozenset(_LOOPBACK | listed | ({bound} if bound not in _WILDCARD else set()))
        self.any_origin = "*" in settings.allowed_origins
        self.origins = frozenset(o.rstrip("/").lower() for o in settings.allowed_origins)
        if self.any_host and "*" not in settings.allowed_hosts:
            log.warning(
                "bound to every interface with no VOXGATE_ALLOWED_HOSTS: any Host header is answered (set the names "
                "this server is reached by, and API keys, to keep web pages elsewhere from using it)"
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        error = self.check(scope)
        if error is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "http":
            response = JSONResponse(error.to_dict(), status_code=error.http_status)
            await response(scope, receive, send)
        else:
            await _refuse_stream(receive, send, error)

    def check(self, scope: Scope) -> VoxgateError | None:
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        if not self.any_host and host_name(host) not in self.hosts:
            return PermissionDenied(
                f"this server does not answer to the host name {host_name(host)[:100]!r} "
                "(the operator can allow it with VOXGATE_ALLOWED_HOSTS)"
            )
        origin = headers.get("origin")
        if origin is not None and not self._origin_allowed(origin, host):
            return PermissionDenied(
                f"requests from the web page origin {origin[:200]!r} are not allowed "
                "(the operator can allow it with VOXGATE_ALLOWED_ORIGINS)"
            )
        path = scope.get("path", "")
        operator = path in OPERATOR_PATHS or (path == "/metrics" and not self.settings.metrics_public)
        if operator and self.settings.api_keys:
            try:
                check_credentials(headers, self.settings)
            except VoxgateError as exc:
                return exc
        return None

    def _origin_allowed(self, origin: str, host: str) -> bool:
        if self.any_origin or origin.rstrip("/").lower() in self.origins:
            return True
        parts = urlsplit(origin)
        # The service's own pages: same scheme family and the very host (and port) the request was sent to.
        return parts.scheme in ("http", "https") and parts.netloc.lower() == host.strip().lower()


async def _refuse_stream(receive: Receive, send: Send, error: VoxgateError) -> None:
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": json.dumps(error.to_dict())})
    await send({"type": "websocket.close", "code": error.ws_close_code})
