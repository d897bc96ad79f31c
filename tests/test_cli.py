from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tests.speech import conversation
from voxgate.audio.pcm import encode_wav
from voxgate.cli import app

runner = CliRunner()


def test_models_lists_the_packaged_models(settings_env: dict[str, str]) -> None:
    result = runner.invoke(app, ["models"], env=settings_env, terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "whisper/tiny.en" in result.output
    assert "whisper/base" in result.output


def test_transcribe_writes_each_format(tmp_path: Path, data: Path, settings_env: dict[str, str]) -> None:
    clip = data / "en" / "jfk.flac"
    for fmt in ("txt", "json", "srt", "vtt"):
        result = runner.invoke(
            app,
            ["transcribe", str(clip), "--model", "whisper/tiny.en", "--format", fmt, "--output-dir", str(tmp_path)],
            env=settings_env,
        )
        assert result.exit_code == 0, result.output
        assert "real-time factor" in result.output
    assert "ask not what your country" in (tmp_path / "jfk.txt").read_text().lower()
    body = json.loads((tmp_path / "jfk.json").read_text())
    assert body["transcription"]["wordTimestamps"][0]["word"]
    assert body["usage"]["transcribedAudioMs"] == 11000
    assert (tmp_path / "jfk.srt").read_text().startswith("1\n00:00:00,000 --> ")
    assert (tmp_path / "jfk.vtt").read_text().startswith("WEBVTT\n\n00:00:00.000 --> ")


def test_transcribe_to_stdout_with_vocabulary(data: Path, settings_env: dict[str, str]) -> None:
    result = runner.invoke(
        app,
        ["transcribe", str(data / "vocabulary" / "comfyui.mp3"), "--model", "whisper/tiny.en", "-p", "ComfyUI"],
        env=settings_env,
    )
    assert result.exit_code == 0, result.output
    assert "ComfyUI" in result.stdout


def test_transcribe_tells_speakers_apart(tmp_path: Path, data: Path, settings_env: dict[str, str]) -> None:
    audio, _ = conversation(data, ["en/spk1_snt2.wav", "en/spk2_snt6.wav", "en/spk1_snt5.wav"])
    path = tmp_path / "talk.wav"
    path.write_bytes(encode_wav(audio))
    result = runner.invoke(app, ["transcribe", str(path), "--model", "whisper/tiny.en", "--diarize"], env=settings_env)
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == ["Speaker 1", "Speaker 2", "Speaker 1"]
    assert "2 speakers" in result.output
    known = runner.invoke(
        app, ["transcribe", str(path), "--model", "whisper/tiny.en", "--speakers", "2", "-f", "json"], env=settings_env
    )
    assert known.exit_code == 0, known.output
    body = json.loads(known.stdout)
    assert [u["speakerTag"] for u in body["utterances"]] == [1, 2, 1]


def test_bad_inputs_fail_cleanly(tmp_path: Path, data: Path, settings_env: dict[str, str]) -> None:
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"this is not audio" * 50)
    result = runner.invoke(app, ["transcribe", str(junk), "--model", "whisper/tiny.en"], env=settings_env)
    assert result.exit_code == 1
    assert "audio_decode_error" in result.output
    result = runner.invoke(app, ["transcribe", str(data / "en" / "jfk.flac"), "--model", "nope/x"], env=settings_env)
    assert result.exit_code == 2
    assert "model_not_found" in result.output
    assert "Traceback" not in result.output


def test_serve_refuses_an_unusable_home_clearly(tmp_path: Path) -> None:
    """A home that cannot hold models is a one-line error and exit 2 at start, not a traceback on first use."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the home should be", encoding="utf-8")
    result = runner.invoke(app, ["serve"], env={"VOXGATE_HOME": str(blocker / "home")}, terminal_width=200)
    assert result.exit_code == 2
    assert "is not usable" in result.output
    assert "VOXGATE_HOME" in result.output
    assert "Traceback" not in result.output


def test_serve_takes_no_key_on_the_command_line(tmp_path: Path) -> None:
    """Keys on a command line show in ``ps`` to every user: only the environment or a file are accepted."""
    result = runner.invoke(app, ["serve", "--api-key", "secret"], env={"VOXGATE_HOME": str(tmp_path)})
    assert result.exit_code == 2
    missing = runner.invoke(
        app, ["serve", "--api-keys-file", str(tmp_path / "none")], env={"VOXGATE_HOME": str(tmp_path)}
    )
    assert missing.exit_code == 2
    assert "cannot read" in missing.output
