"""``voxgate stream FILE``: the CLI's WebSocket client against the real live server."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from tests.client import TINY, closed_port_url
from tests.conftest import LiveServer
from tests.speech import reference, wer
from voxgate.cli import app
from voxgate.client import EndOfTurnMessage, ResultMessage, parse_server_message
from voxgate.protocol.ws import EndTurnReason

runner = CliRunner()
FINAL_LINE = re.compile(r"^\[turn (\d+)  (\d+\.\d\d)\u2013(\d+\.\d\d) s\] (.+)$")


def test_stream_prints_the_final(live_server: LiveServer, data: Path) -> None:
    clip = data / "en" / "spk1_snt1.wav"
    result = runner.invoke(app, ["stream", str(clip), "--url", live_server.url, "--model", TINY, "--no-realtime"])
    assert result.exit_code == 0, result.output
    # stdout is not a TTY here: no partials, only finals, one a line.
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    match = FINAL_LINE.match(lines[0])
    assert match, lines[0]
    turn, start, end, text = match.groups()
    assert turn == "0"
    assert 0.0 <= float(start) < float(end) <= 2.87 + 0.05
    assert wer(reference(data, "en/spk1_snt1.wav"), text) <= 0.2
    # Speech events and the summary go to stderr.
    assert "speech started at" in result.stderr
    assert "end of turn 0" in result.stderr
    assert re.search(r"1 turn, 2\.9 s audio in \d+\.\d s wall", result.stderr), result.stderr


def test_stream_json_lines(live_server: LiveServer, data: Path) -> None:
    clip = data / "en" / "spk2_snt1.wav"
    ws_url = live_server.ws_url + "/"
    args = ["stream", str(clip), "--url", ws_url, "--model", TINY, "--no-realtime", "--turn-mode", "manual", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    messages = [parse_server_message(line) for line in lines]
    assert all(m is not None for m in messages)
    assert all(isinstance(json.loads(line), dict) for line in lines)
    results = [m.result.transcription for m in messages if isinstance(m, ResultMessage)]
    assert results[-1].is_final
    assert wer(reference(data, "en/spk2_snt1.wav"), results[-1].transcript) <= 0.2
    # Manual turns: only closeStream ended the turn.
    ends = [m.end_of_turn for m in messages if isinstance(m, EndOfTurnMessage)]
    assert [e.reason for e in ends] == [EndTurnReason.CLOSE]
    assert "1 turn," in result.stderr


def test_stream_server_error_exits_1(live_server: LiveServer, data: Path) -> None:
    clip = data / "en" / "spk1_snt1.wav"
    result = runner.invoke(app, ["stream", str(clip), "--url", live_server.url, "--model", "nope/x", "--no-realtime"])
    assert result.exit_code == 1
    assert "model_not_found" in result.stderr
    assert result.stdout == ""
    assert "Traceback" not in result.output


def test_stream_connection_failure_exits_1(data: Path) -> None:
    clip = data / "en" / "spk1_snt1.wav"
    result = runner.invoke(app, ["stream", str(clip), "--url", closed_port_url(), "--no-realtime"])
    assert result.exit_code == 1
    assert "connection_failed" in result.stderr
    assert "Traceback" not in result.output


def test_stream_bad_file_and_url(tmp_path: Path, data: Path) -> None:
    junk = tmp_path / "junk.mp3"
    junk.write_bytes(b"\x00" * 300)
    result = runner.invoke(app, ["stream", str(junk), "--url", closed_port_url()])
    assert result.exit_code == 1
    assert "audio_decode_error" in result.stderr
    assert "Traceback" not in result.output
    result = runner.invoke(app, ["stream", str(data / "en" / "spk1_snt1.wav"), "--url", "ftp://example.com"])
    assert result.exit_code == 2
    assert "ftp" in result.output
