"""``create_app(settings)``: the ASGI application, its lifespan, its error handling and its middleware."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Mount, compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from voxgate import __version__
from voxgate.config import Settings
from voxgate.errors import InvalidRequest, PayloadTooLarge, VoxgateError, error_body
from voxgate.metrics import Metrics
from voxgate.protocol.http import describe_errors
from voxgate.server import console, http, jobs, openai, ws
from voxgate.server.guard import Guard
from voxgate.service import Service

__all__ = ["create_app"]

log = logging.getLogger(__name__)

# A base64 JSON body is 4/3 of the audio it carries; leave room for the config around it.
_JSON_OVERHEAD = 64 * 1024


def _body_limit(settings: Settings) -> int:
    return settings.max_upload_bytes * 4 // 3 + _JSON_OVERHEAD


class BodyLimit:
    """Refuse request bodies over the limit: at once by Content-Length, or while reading a chunked body."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await _send_error(send, PayloadTooLarge(_too_large(self.limit)))
                return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise PayloadTooLarge(_too_large(self.limit))
            return message

        await self.app(scope, limited, send)


class Observe:
    """Count requests by route and status and time them (outermost, so refusals by :class:`BodyLimit` count too).

    The route label is one of the app's own paths (a route with parameters by its template), ``<mount>/*`` for files
    under a mounted app (the console's), or ``unmatched``: never the raw path, which a client could vary without end
    to grow the metrics.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics, routes: frozenset[str], mounts: tuple[str, ...] = ()) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = routes
        self.mounts = mounts
        self.templates = [(compile_path(r)[0], r) for r in sorted(routes) if "{" in r]
        """Routes with parameters (``/lro/v1alpha/operations/{job_id}``), labelled by their template."""

    def label(self, path: str) -> str:
        if path in self.routes:
            return path
        for pattern, template in self.templates:
            if pattern.match(path):
                return template
        for mount in self.mounts:
            if path.startswith(mount + "/"):
                return mount + "/*"
        return "unmatched"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in ("/metrics", "/healthz"):
            await self.app(scope, receive, send)
            return
        route = self.label(path)
        started = time.perf_counter()
        status = 500

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            self.metrics.requests.labels(route, str(status)).inc()
            self.metrics.request_seconds.labels(route).observe(time.perf_counter() - started)


def _too_large(limit: int) -> str:
    return f"request body exceeds the limit of {limit} bytes (set VOXGATE_MAX_UPLOAD_BYTES to change it)"


async def _send_error(send: Send, error: VoxgateError) -> None:
    response = JSONResponse(error.to_dict(), status_code=error.http_status)
    await send({"type": "http.response.start", "status": response.status_code, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})


def error_response(error: VoxgateError) -> JSONResponse:
    return JSONResponse(error.to_dict(), status_code=error.http_status)


def create_app(settings: Settings | None = None, *, service: Service | None = None) -> FastAPI:
    settings = settings or Settings()
    owned = service is None
    svc = service or Service(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(svc.preload)
        queue = await anyio.to_thread.run_sync(jobs.Jobs.open, settings, svc)
        app.state.jobs = queue
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(queue.runner.run)  # async jobs, claimed from the store and run below everything
                try:
                    yield
                finally:
                    tasks.cancel_scope.cancel()  # running jobs are handed back to the queue
        finally:
            await anyio.to_thread.run_sync(queue.close)
            if owned:
                await anyio.to_thread.run_sync(svc.close)

    app = FastAPI(title="voxgate", version=__version__, lifespan=lifespan)
    app.state.service = svc
    app.state.settings = settings

    @app.exception_handler(VoxgateError)
    async def _voxgate_error(request: Request, exc: VoxgateError) -> JSONResponse:
        svc.metrics.errors.labels(exc.code).inc()
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        error = InvalidRequest(describe_errors(exc.errors(), skip=("body", "query", "form")))
        svc.metrics.errors.labels(error.code).inc()
        return error_response(error)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(error_body(code, str(exc.detail)), status_code=exc.status_code)

    @app.exception_handler(ClientDisconnect)
    async def _client_left(request: Request, exc: ClientDisconnect) -> Response:
        # The client hung up before its request was read in full: nobody reads an answer, and nothing went wrong
        # here. Counted; logged below warnings.
        log.info("client left during %s %s before its request was read", request.method, request.url.path)
        svc.metrics.errors.labels("client_disconnected").inc()
        return Response(status_code=499)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        error = VoxgateError("internal server error")
        svc.metrics.errors.labels(error.code).inc()
        return error_response(error)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, object]:
        return {"status": "ok", "version": __version__, "models_loaded": [m.id for m in svc.list_models() if m.loaded]}

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(await anyio.to_thread.run_sync(svc.exposition), media_type=CONTENT_TYPE_LATEST)

    app.include_router(http.router)
    app.include_router(jobs.router)
    app.include_router(jobs.results_router)
    app.include_router(openai.router)
    app.include_router(ws.router)
    if settings.console:
        console.mount_console(app)
    app.add_middleware(BodyLimit, limit=_body_limit(settings))
    app.add_middleware(Guard, settings=settings)
    routers: tuple[APIRouter, ...] = (http.router, jobs.router, jobs.results_router, openai.router)
    routers += (console.router,) if settings.console else ()
    routes = frozenset(r.path for router in routers for r in router.routes if isinstance(r, APIRoute))
    mounts = tuple(r.path for r in app.routes if isinstance(r, Mount))
    app.add_middleware(Observe, metrics=svc.metrics, routes=routes, mounts=mounts)
    return app
