"""Callback signatures: what a receiver checks."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from tests.jobs.localhttp import LocalHttp
from voxgate.jobs.fetch import UrlPolicy
from voxgate.jobs.webhook import SIGNATURE_HEADER, deliver, sign, verify

BODY = b'{"name": "operations/0123", "done": true}'


def test_the_signature_is_hmac_sha256_of_the_timestamp_and_the_body() -> None:
    header = sign("s3cret", BODY, 1_800_000_000)
    expected = hmac.new(b"s3cret", b"1800000000." + BODY, hashlib.sha256).hexdigest()
    assert header == f"t=1800000000,v1={expected}"


def test_verify() -> None:
    header = sign("s3cret", BODY, 1_800_000_000)
    assert verify("s3cret", BODY, header, now=1_800_000_010)
    assert not verify("other", BODY, header, now=1_800_000_010)
    assert not verify("s3cret", BODY + b" ", header, now=1_800_000_010)
    assert not verify("s3cret", BODY, header, now=1_800_001_000)  # a replay, too old
    assert not verify("s3cret", BODY, header.replace("t=1800000000", "t=1800000001"), now=1_800_000_010)
    assert not verify("s3cret", BODY, "garbage", now=1_800_000_010)


async def test_delivery_is_retried_and_bounded(tmp_path: Path) -> None:
    policy = UrlPolicy(allow_http=True, allow_private=True, timeout=5)
    with LocalHttp(tmp_path, statuses=[500, 502]) as receiver:
        assert await deliver(f"{receiver.url}/hook", BODY, secret="k", policy=policy, attempts=5, backoff=0.01)
        assert len(receiver.received) == 3
        assert all(verify("k", r.body, r.headers[SIGNATURE_HEADER]) for r in receiver.received)
    with LocalHttp(tmp_path, statuses=[500] * 10) as failing:
        assert not await deliver(f"{failing.url}/hook", BODY, secret="k", policy=policy, attempts=3, backoff=0.01)
        assert len(failing.received) == 3
