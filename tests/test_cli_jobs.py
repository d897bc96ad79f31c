"""``voxgate jobs ...``: the CLI's job commands against the real live server (its runner and store included)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tests.conftest import LiveServer
from tests.speech import reference, wer
from voxgate.cli import app

runner = CliRunner()
TINY = "whisper/tiny.en"


def test_submit_wait_prints_the_text(live_server: LiveServer, data: Path) -> None:
    clip = data / "en" / "spk1_snt5.wav"
    args = ["jobs", "submit", str(clip), "--url", live_server.url, "--model", TINY, "--wait"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert wer(reference(data, "en/spk1_snt5.wav"), result.stdout) < 0.3
    assert "operations/" in result.stderr


def test_submit_then_status_wait_result_list_cancel(live_server: LiveServer, data: Path) -> None:
    clip = data / "en" / "spk2_snt1.wav"
    url = ["--url", live_server.url]
    submitted = runner.invoke(app, ["jobs", "submit", str(clip), *url, "--model", TINY])
    assert submitted.exit_code == 0, submitted.output
    name = submitted.stdout.strip()
    assert name.startswith("operations/")

    waited = runner.invoke(app, ["jobs", "wait", name, *url])
    assert waited.exit_code == 0, waited.output
    assert waited.stdout.strip() == f"{name} SUCCEEDED"

    status = runner.invoke(app, ["jobs", "status", name.split("/")[1], *url])  # the bare id works too
    assert json.loads(status.stdout)["done"] is True

    result = runner.invoke(app, ["jobs", "result", name, *url])
    document = json.loads(result.stdout)
    assert wer(reference(data, "en/spk2_snt1.wav"), document["transcript"]) < 0.3
    assert document["usage"]["modelId"] == TINY
    srt = runner.invoke(app, ["jobs", "result", name, *url, "--format", "srt"])
    assert srt.stdout.startswith("1\n00:00:0")

    listed = runner.invoke(app, ["jobs", "list", *url, "--json"])
    assert name in [op["name"] for op in json.loads(listed.stdout)]

    cancelled = runner.invoke(app, ["jobs", "cancel", name, *url])  # too late: it stays as it is
    assert cancelled.stdout.strip() == f"{name} SUCCEEDED"


def test_errors_are_one_red_line(live_server: LiveServer) -> None:
    result = runner.invoke(app, ["jobs", "status", "0" * 32, "--url", live_server.url])
    assert result.exit_code == 1
    assert "not_found" in result.stderr
    refused = runner.invoke(app, ["jobs", "submit", "--uri", "http://127.0.0.1/a.wav", "--url", live_server.url])
    assert refused.exit_code == 1
    assert "invalid_argument" in refused.stderr
