"""Async jobs over HTTP: submit (``POST /stt/v1/transcribe:async``), poll, list, cancel and delete operations
(``/lro/v1alpha/operations``), and the result document behind each ``resultUri`` (``/stt/v1/results/{id}``).

The routes keep to the edge: they check the request, store the job (:mod:`voxgate.jobs`) and describe it
(:mod:`voxgate.protocol.jobs`). :func:`run_job` is what the runner calls to do a job: the same file pipeline as the
sync route, at background priority on the same scheduler, in windows of ``job_window_seconds``.

Who sees a job: with API keys set, only requests carrying the key that submitted it (anyone else gets ``not_found``,
as for a job that does not exist). A ``resultUri`` is a signed link: it works without a key until the result
expires, like the reference's; without its signature it needs the owner's key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import TypeAdapter, ValidationError
from starlette.datastructures import UploadFile

from voxgate.config import Settings
from voxgate.errors import InvalidBase64, InvalidRequest, NotFound, PermissionDenied
from voxgate.files import AudioSource
from voxgate.files.pipeline import Checkpoints
from voxgate.jobs.backends import open_store
from voxgate.jobs.fetch import UrlPolicy, fetch, resolve
from voxgate.jobs.runner import JobRunner, Progress, RunnerConfig
from voxgate.jobs.store import JobRecord, JobState, JobStore, NewJob, valid_job_id
from voxgate.protocol.http import RAW_ENCODINGS, TranscribeConfig, describe_errors
from voxgate.protocol.jobs import (
    OPERATIONS,
    AsyncResult,
    AsyncTranscribeRequest,
    ListOperationsResponse,
    Operation,
)
from voxgate.protocol.options import diarization, options_of, wants_profile
from voxgate.server.auth import check_credentials, key_owner, require_key
from voxgate.server.http import audio_source
from voxgate.service import Service

__all__ = ["Jobs", "results_router", "router", "run_job"]

router = APIRouter(dependencies=[Depends(require_key)])
results_router = APIRouter()
"""The result links: signed, so they need no key (they check one themselves when the signature is missing)."""

log = logging.getLogger(__name__)

_REQUEST = TypeAdapter(AsyncTranscribeRequest)
_CONFIG = TypeAdapter(TranscribeConfig)
_PAGE = 50

T = TypeVar("T")


class Jobs:
    """What the job routes share: the store, the runner, the key that signs result links."""

    def __init__(self, settings: Settings, service: Service, store: JobStore, signing_key: bytes) -> None:
        self.settings = settings
        self.service = service
        self.store = store
        self.signing_key = signing_key
        self.policy = UrlPolicy(
            allow_http=settings.job_url_allow_http,
            allow_private=settings.job_url_allow_private,
            max_bytes=settings.job_fetch_max_bytes or settings.max_upload_bytes,
            timeout=settings.job_fetch_timeout_seconds,
        )
        secret = settings.job_webhook_secret
        config = RunnerConfig(
            workers=settings.job_workers,
            lease_seconds=settings.job_lease_seconds,
            max_attempts=settings.job_max_attempts,
            retention_seconds=settings.job_retention_seconds,
            timeout_seconds=settings.job_timeout_seconds,
            webhook_secret=secret.get_secret_value() if secret is not None else None,
            webhook_attempts=settings.job_webhook_max_attempts,
            webhook_backoff=settings.job_webhook_backoff_seconds,
            url_policy=UrlPolicy(
                allow_http=settings.job_url_allow_http,
                allow_private=settings.job_url_allow_private,
                timeout=settings.job_webhook_timeout_seconds,
            ),
        )
        self.runner = JobRunner(store, self._run, config, callback_body=self._callback_body)

    @classmethod
    def open(cls, settings: Settings, service: Service) -> Jobs:
        """The store the settings name, and the result-signing key (made once and kept in the home directory when the
        settings give none). Blocking."""
        store = open_store(settings.job_store, settings.home)
        if settings.job_result_secret is not None:
            key = settings.job_result_secret.get_secret_value().encode()
        else:
            key = _home_secret(settings.home / "jobs" / "secret")
            if settings.job_store.startswith(("postgresql://", "postgres://")):
                log.warning(
                    "a shared job store without VOXGATE_JOB_RESULT_SECRET: resultUri links signed here fail on "
                    "the other servers (set the same secret on every server)"
                )
        return cls(settings, service, store, key)

    async def _run(self, job: JobRecord, audio: Path, progress: Progress, kept: Checkpoints) -> bytes:
        return await run_job(self.service, self.settings, job, audio, progress, kept)

    def _callback_body(self, job: JobRecord) -> bytes:
        """The finished operation, its ``resultUri`` on the URL the job was submitted to (or ``public_url``)."""
        stored = json.loads(job.request).get("baseUrl")
        base = self.settings.public_url or stored or f"http://{self.settings.host}:{self.settings.port}"
        return operation(job, self, base).model_dump_json(by_alias=True).encode()

    def sign(self, job_id: str, expires: int) -> str:
        return hmac.new(self.signing_key, f"{job_id}.{expires}".encode(), hashlib.sha256).hexdigest()

    def result_uri(self, job: JobRecord, base: str) -> str:
        expires = int(job.expire_at or 0)
        return f"{base.rstrip('/')}/stt/v1/results/{job.id}?expires={expires}&signature={self.sign(job.id, expires)}"

    def close(self) -> None:
        self.store.close()


def _home_secret(path: Path) -> bytes:
    """A random key kept in ``path`` (made on first use, readable by the owner only)."""
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode()
    try:
        fd = path.open("xb")  # two servers starting at once: one writes, the other reads what it wrote
    except FileExistsError:
        return path.read_bytes().strip()
    with fd:
        path.chmod(0o600)
        fd.write(key)
    return key


async def run_job(
    service: Service,
    settings: Settings,
    job: JobRecord,
    audio: Path,
    progress: Progress,
    kept: Checkpoints | None = None,
) -> bytes:
    """Do one job: its stored request and audio → its result document (JSON bytes); ``kept``: where its windows are
    kept as it goes (and found, when an earlier attempt died mid-job)."""
    config = _CONFIG.validate_python(json.loads(job.request)["transcribeConfig"])
    source: AudioSource = audio
    if config.audio_encoding in RAW_ENCODINGS:  # headerless PCM needs its config to be read; a WAV is a file
        data = await anyio.to_thread.run_sync(audio.read_bytes)
        source = audio_source(data, config, len(data))

    def report(done: float, total: float) -> None:
        if total > 0:
            progress(100.0 * done / total)

    wanted = wants_profile(config)
    result = await service.transcribe_file(
        source,
        options_of(config),
        config.model_id,
        profile=wanted,
        diarize=diarization(config),
        separate_channels=config.enable_separate_recognition_per_channel,
        progress=report,
        background=True,
        window_seconds=settings.job_window_seconds,
        checkpoints=kept,
    )
    return AsyncResult.of(result, config, profile=wanted).model_dump_json(by_alias=True).encode()


# -- routes -----------------------------------------------------------------------------------------------------------


def _jobs(request: Request) -> Jobs:
    jobs: Jobs = request.app.state.jobs
    return jobs


def _base(request: Request, jobs: Jobs) -> str:
    return jobs.settings.public_url or str(request.base_url)


def operation(job: JobRecord, jobs: Jobs, base: str) -> Operation:
    uri = jobs.result_uri(job, base) if job.state is JobState.SUCCEEDED else None
    return Operation.of(job, uri)


async def _store(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))


async def _read_submit(request: Request, jobs: Jobs) -> tuple[bytes, TranscribeConfig, str | None]:
    """The audio (fetched, when given by URL), the config and the callback URL of a submit."""
    content_type = request.headers.get("content-type", "")
    uri: str | None = None
    if content_type.startswith("multipart/form-data"):
        async with request.form(max_files=1, max_fields=20) as form:
            raw = form.get("transcribeConfig")
            try:
                config = _CONFIG.validate_json(raw) if isinstance(raw, str) else TranscribeConfig()
            except ValidationError as exc:
                raise InvalidRequest("transcribeConfig: " + describe_errors(exc.errors())) from None
            callback = form.get("callbackUrl")
            callback = callback if isinstance(callback, str) and callback else None
            given = form.get("audioUri")
            upload = form.get("file")
            if isinstance(upload, UploadFile):
                data = await upload.read()
            elif isinstance(given, str) and given:
                uri = given
                data = b""
            else:
                raise InvalidRequest("multipart submit needs a 'file' part (after 'transcribeConfig') or 'audioUri'")
    elif content_type.startswith("application/json") or not content_type:
        try:
            parsed = _REQUEST.validate_json(await request.body())
        except ValidationError as exc:
            raise InvalidRequest(describe_errors(exc.errors())) from None
        config, callback, uri = parsed.transcribe_config, parsed.callback_url, parsed.audio_uri
        data = b""
        if parsed.content is not None:
            try:
                data = base64.b64decode(parsed.content, validate=True)
            except (binascii.Error, ValueError):
                raise InvalidBase64("audioData.content is not valid base64") from None
    else:
        raise InvalidRequest(f"unsupported content type {content_type!r}: send application/json or multipart/form-data")
    if callback is not None:
        if jobs.settings.job_webhook_secret is None:
            raise InvalidRequest("callbackUrl needs a signing secret on the server (VOXGATE_JOB_WEBHOOK_SECRET)")
        await resolve(callback, jobs.runner.config.url_policy)  # refused now rather than when the job is done
    if uri is not None:
        data = await fetch(uri, jobs.policy)  # a URL that cannot be fetched fails the submit, not the job
    return data, config, callback


@router.post("/stt/v1/transcribe:async", response_model=Operation, response_model_by_alias=True)
async def submit(request: Request) -> Operation:
    """Queue a file for transcription: the JSON body of the sync route (base64 ``audioData``, or ``audioUri``), or
    multipart (``transcribeConfig``, then ``file``); optionally ``callbackUrl``. Answers the operation to poll."""
    jobs = _jobs(request)
    data, config, callback = await _read_submit(request, jobs)
    audio_source(data, config, jobs.settings.max_upload_bytes)  # empty, too large, headerless without a rate
    for model_id in [config.model_id] if not isinstance(config.model_id, list) else config.model_id:
        await anyio.to_thread.run_sync(jobs.service.resolve, model_id)  # an unknown model fails now
    config_json = config.model_dump(mode="json", by_alias=True)
    stored = json.dumps({"transcribeConfig": config_json, "baseUrl": _base(request, jobs)}).encode()
    owner = key_owner(request.headers, jobs.settings)
    new = NewJob(id=uuid.uuid4().hex, owner=owner, request=stored, callback_url=callback)
    job = await _store(jobs.store.submit, new, data, max_queued=jobs.settings.job_max_queued, now=time.time())
    jobs.runner.wake()
    return operation(job, jobs, _base(request, jobs))


async def _owned(request: Request, job_id: str) -> JobRecord:
    """The caller's job ``job_id``; ``not_found`` for a malformed id, an unknown or expired job, or another key's."""
    jobs = _jobs(request)
    job = await _store(jobs.store.get, job_id) if valid_job_id(job_id) else None
    if job is None or job.owner != key_owner(request.headers, jobs.settings):
        raise NotFound(f"no operation {OPERATIONS}{job_id[:64]} (it may have expired)")
    return job


@router.get("/lro/v1alpha/operations", response_model=ListOperationsResponse, response_model_by_alias=True)
async def list_operations(request: Request, pageSize: int = _PAGE, pageToken: str = "") -> ListOperationsResponse:
    """The caller's jobs, newest first, ``pageSize`` at a time (at most 200); ``nextPageToken`` leads on."""
    jobs = _jobs(request)
    size = max(1, min(pageSize, 200))
    before = _page_token(pageToken) if pageToken else None
    owner = key_owner(request.headers, jobs.settings)
    found = await _store(jobs.store.list, owner, limit=size + 1, before=before)
    page, more = found[:size], len(found) > size
    token = ""
    if more:
        token = base64.urlsafe_b64encode(f"{page[-1].created_at!r}/{page[-1].id}".encode()).decode()
    base = _base(request, jobs)
    return ListOperationsResponse(operations=[operation(j, jobs, base) for j in page], next_page_token=token)


def _page_token(token: str) -> tuple[float, str]:
    try:
        created, _, job_id = base64.urlsafe_b64decode(token.encode()).decode().partition("/")
        if valid_job_id(job_id):
            return float(created), job_id
    except (ValueError, binascii.Error):
        pass
    raise InvalidRequest("pageToken is not one this server gave")


@router.get("/lro/v1alpha/operations/{job_id}", response_model=Operation, response_model_by_alias=True)
async def get_operation(request: Request, job_id: str) -> Operation:
    """One job's operation: ``done``, ``metadata.progressPercent``, and ``response.resultUri`` or ``error``."""
    job = await _owned(request, job_id)
    jobs = _jobs(request)
    return operation(job, jobs, _base(request, jobs))


@router.post("/lro/v1alpha/operations/{target}", response_model=Operation, response_model_by_alias=True)
async def cancel_operation(request: Request, target: str) -> Operation:
    """``POST .../operations/{id}:cancel``: cancel a queued or running job (a finished one is returned as it is)."""
    job_id, _, verb = target.partition(":")
    if verb != "cancel":
        raise NotFound(f"no such method {verb!r} on operations (there is :cancel)")
    await _owned(request, job_id)
    jobs = _jobs(request)
    job = await _store(jobs.store.cancel, job_id, retention=jobs.settings.job_retention_seconds, now=time.time())
    if job is None:
        raise NotFound(f"no operation {OPERATIONS}{job_id}")
    jobs.runner.call_back_soon(job)
    return operation(job, jobs, _base(request, jobs))


@router.delete("/lro/v1alpha/operations/{job_id}")
async def delete_operation(request: Request, job_id: str) -> dict[str, Any]:
    """Forget a job, its audio and its result now (cancelling it first if it is still to run)."""
    await _owned(request, job_id)
    jobs = _jobs(request)
    await _store(jobs.store.cancel, job_id, retention=0, now=time.time())
    await _store(jobs.store.delete, job_id)
    return {}


@results_router.get("/stt/v1/results/{job_id}")
async def result(request: Request, job_id: str, expires: int = 0, signature: str = "") -> Response:
    """The result document of a succeeded job: with the link's signature until it expires, or with the owner's key."""
    jobs = _jobs(request)
    if not valid_job_id(job_id):
        raise NotFound(f"no result {job_id[:64]}")
    if signature:
        if not hmac.compare_digest(signature, jobs.sign(job_id, expires)):
            raise PermissionDenied("the result link's signature does not match")
        if expires < time.time():
            raise NotFound("the result link has expired")
    else:
        check_credentials(request.headers, jobs.settings)
        await _owned(request, job_id)
    body = await _store(jobs.store.result, job_id)
    if body is None:
        raise NotFound(f"no result for {OPERATIONS}{job_id} (not finished, failed, or expired)")
    return Response(content=body, media_type="application/json")
