"""Completion callbacks: a job's final operation POSTed to its ``callbackUrl``, signed, retried a bounded number of
times.

The signature (header :data:`SIGNATURE_HEADER`) is ``t=<unix seconds>,v1=<hex>``, where the hex is
HMAC-SHA256(``job_webhook_secret``, ``"<t>.<raw body>"``). A receiver recomputes it over the exact bytes it got and
compares in constant time (:func:`verify`); the timestamp inside the signed text lets it refuse old replays. Delivery
is at least once: a 2xx ends it, anything else (or no answer) is retried after a doubling backoff, up to
``job_webhook_max_attempts`` tries; the job's name in the body lets a receiver drop a repeat.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time

import anyio

from voxgate.errors import VoxgateError
from voxgate.jobs.fetch import UrlPolicy, post

__all__ = ["SIGNATURE_HEADER", "deliver", "sign", "verify"]

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Voxgate-Signature"


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The :data:`SIGNATURE_HEADER` value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, body: bytes, header: str, *, now: float | None = None, tolerance: float = 300.0) -> bool:
    """Whether ``header`` signs ``body`` with ``secret`` and was made within ``tolerance`` seconds of ``now``."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    stamp = fields.get("t", "")
    if not stamp.isdigit() or "v1" not in fields:
        return False
    if abs((time.time() if now is None else now) - int(stamp)) > tolerance:
        return False
    expected = sign(secret, body, int(stamp)).split("v1=", 1)[1]
    return hmac.compare_digest(expected, fields["v1"])


async def deliver(
    url: str, body: bytes, *, secret: str, policy: UrlPolicy, attempts: int, backoff: float, name: str = ""
) -> bool:
    """POST ``body`` to ``url`` until a 2xx answer, at most ``attempts`` times; whether it was delivered."""
    wait = backoff
    for attempt in range(1, attempts + 1):
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(secret, body, int(time.time()))}
        try:
            status = await post(url, body, headers, policy)
        except (VoxgateError, TimeoutError) as exc:
            problem = str(exc) or type(exc).__name__
        else:
            if 200 <= status < 300:
                return True
            problem = f"HTTP {status}"
        log.warning("callback for %s, attempt %d of %d: %s", name or url, attempt, attempts, problem)
        if attempt < attempts:
            await anyio.sleep(wait)
            wait *= 2
    return False
