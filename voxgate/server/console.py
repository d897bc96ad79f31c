"""The web console: a static page at ``/`` and its files under ``/console/``.

Plain HTML, CSS and ES modules shipped inside the package: no build step, no CDN. The page talks to the service
through the same public REST and WebSocket API as any client. Its Content-Security-Policy allows this origin only,
so nothing it does can reach the internet.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse
from starlette.staticfiles import StaticFiles

__all__ = ["STATIC", "mount_console"]

STATIC = Path(__file__).resolve().parent / "static"
_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")

router = APIRouter(include_in_schema=False)


def content_security_policy(host: str | None) -> str:
    # 'self' covers same-origin WebSockets in current browsers; naming them too keeps older ones working.
    sockets = f" ws://{host} wss://{host}" if host and _HOST.match(host) else ""
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "media-src 'self' blob:",
            f"connect-src 'self'{sockets}",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )


@router.get("/")
async def index(request: Request) -> FileResponse:
    return FileResponse(
        STATIC / "index.html",
        headers={
            "Content-Security-Policy": content_security_policy(request.headers.get("host")),
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )


def mount_console(app: FastAPI) -> None:
    """Serve the console at ``/`` (files revalidated by ETag, so an upgrade shows at the next load)."""
    app.include_router(router)
    app.mount("/console", StaticFiles(directory=STATIC), name="console")
