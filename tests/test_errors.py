"""The error tree's wire form: one JSON shape for every failure."""

from __future__ import annotations

from voxgate.errors import IdleTimeout, ModelNotFound, VoxgateError, error_body


def test_error_body_is_the_published_shape() -> None:
    assert error_body("not_found", "no such route") == {"error": {"code": "not_found", "message": "no such route"}}


def test_every_error_carries_its_own_code() -> None:
    assert ModelNotFound("whisper/huge").to_dict() == error_body("model_not_found", "whisper/huge")
    assert IdleTimeout("quiet").to_dict() == error_body("idle_timeout", "quiet")
    assert VoxgateError("boom").to_dict() == error_body("internal", "boom")
