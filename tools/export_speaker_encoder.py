"""Export Resemblyzer's speaker encoder weights to ``voxgate/analysis/data/speaker_encoder.npz``, without torch.

A dev tool, run once by hand; voxgate itself only reads the npz (see :mod:`voxgate.analysis.speaker`).

Getting the source file: the weights ship inside the Resemblyzer 0.1.4 wheel (Apache-2.0, Resemble.AI)::

    pip download resemblyzer==0.1.4 --no-deps -d /tmp/rz
    cd /tmp/rz && python -m zipfile -e Resemblyzer-0.1.4-py3-none-any.whl wheel
    python tools/export_speaker_encoder.py /tmp/rz/wheel/resemblyzer/pretrained.pt

Only that exact file is accepted (its sha256 is pinned below, and is the one the wheel's RECORD lists).

``pretrained.pt`` is a checkpoint dict (``{"step", "model_state", "optimizer_state"}``) written by ``torch.save`` in
torch's *legacy* (pre-1.6, non-zip) format: five pickles in a row, then raw data:

1. the magic number ``0x1950a86a20f9469cfc6c``;
2. the protocol version, 1001;
3. ``sys_info`` (endianness, C type sizes);
4. the object itself, where every tensor is ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)``
   and every storage a *persistent id* ``("storage", <torch.FloatStorage>, key, location, numel, view_metadata)``;
5. the list of storage keys, in the order their data follows;

then, for each key, an int64 element count and that many little-endian elements. The unpickler below resolves only
the three globals such a checkpoint uses (``collections.OrderedDict``, ``torch.*Storage`` as a dtype, and
``_rebuild_tensor_v2`` as a numpy strided view) and refuses any other, so the file runs no code.

The npz holds the ``model_state`` arrays as float32, named like the state dict's keys (``lstm.weight_ih_l0``, ...,
``linear.weight``, ``linear.bias``); the optimizer state and the GE2E loss's
``similarity_weight``/``similarity_bias`` are dropped. It is written like ``np.savez_compressed``
(deflated ``.npy`` members) but with fixed member timestamps, so the same source always gives the same npz.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import io
import pickle
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import numpy.typing as npt

SOURCE_SHA256 = "39373b86598fa3da9fcddee6142382efe09777e8d37dc9c0561f41f0070f134e"
"""sha256 of ``resemblyzer/pretrained.pt`` in the Resemblyzer 0.1.4 wheel (17,090,379 bytes)."""
OUTPUT = Path(__file__).resolve().parents[1] / "voxgate" / "analysis" / "data" / "speaker_encoder.npz"

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
STORAGE_DTYPES: dict[str, np.dtype[Any]] = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}
EXPECTED_KEYS = {
    *(f"lstm.{kind}_{part}_l{layer}" for kind in ("weight", "bias") for part in ("ih", "hh") for layer in range(3)),
    "linear.weight",
    "linear.bias",
}
TRAINING_ONLY_KEYS = {"similarity_weight", "similarity_bias"}
"""The GE2E loss's scale and bias: in ``model_state`` but not part of the encoder (Resemblyzer skips them too)."""


@dataclass(frozen=True)
class StorageType:
    """What ``torch.FloatStorage`` and its siblings unpickle to: only their element type matters."""

    dtype: np.dtype[Any]


@dataclass
class Storage:
    """One storage named by a persistent id; ``data`` is filled once the raw storages after the pickle are read."""

    key: str
    dtype: np.dtype[Any]
    numel: int
    data: npt.NDArray[Any] | None = None


@dataclass(frozen=True)
class StorageView:
    """A storage seen through ``view_metadata`` (offset and size in elements): unused by Resemblyzer, but cheap."""

    storage: Storage
    offset: int
    size: int


@dataclass(frozen=True)
class TensorRef:
    """A tensor from ``_rebuild_tensor_v2``, resolved into a numpy array after the storages are read."""

    storage: Storage | StorageView
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    def array(self) -> npt.NDArray[Any]:
        if isinstance(self.storage, StorageView):
            storage, base = self.storage.storage, self.storage.offset
        else:
            storage, base = self.storage, 0
        if storage.data is None:
            raise ValueError(f"storage {storage.key} has no data")
        flat = storage.data[base + self.offset :]
        if self.size and max(s * (n - 1) for s, n in zip(self.stride, self.size, strict=True)) >= len(flat):
            raise ValueError(f"tensor of size {self.size} runs past the end of storage {storage.key}")
        strides = tuple(s * flat.itemsize for s in self.stride)
        return np.lib.stride_tricks.as_strided(flat, shape=self.size, strides=strides, writeable=False).copy()


def _rebuild_tensor_v2(
    storage: Storage | StorageView,
    storage_offset: int,
    size: tuple[int, ...],
    stride: tuple[int, ...],
    requires_grad: bool,
    backward_hooks: object,
    metadata: object = None,
) -> TensorRef:
    return TensorRef(storage, storage_offset, tuple(size), tuple(stride))


class LegacyUnpickler(pickle.Unpickler):
    """Unpickles the object part of a legacy torch file into :class:`TensorRef` placeholders; allows no other code."""

    def __init__(self, file: BinaryIO) -> None:
        super().__init__(file)
        self.storages: dict[str, Storage] = {}

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGE_DTYPES:
            return StorageType(STORAGE_DTYPES[name])
        raise pickle.UnpicklingError(f"refusing to load global {module}.{name}")

    def persistent_load(self, pid: Any) -> Storage | StorageView:
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] in ("storage", b"storage")):
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
        _, storage_type, key, _location, numel, view_metadata = pid
        if not isinstance(storage_type, StorageType):
            raise pickle.UnpicklingError(f"not a storage type: {storage_type!r}")
        key = key.decode("ascii") if isinstance(key, bytes) else str(key)
        storage = self.storages.setdefault(key, Storage(key, storage_type.dtype, int(numel)))
        if view_metadata is None:
            return storage
        _view_key, offset, view_size = view_metadata
        return StorageView(storage, int(offset), int(view_size))


def _read_exact(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise ValueError(f"file ends early: wanted {n} bytes, got {len(data)}")
    return data


def load_legacy(f: BinaryIO) -> Any:
    """The object in a legacy-format ``torch.save`` file, with every tensor a :class:`TensorRef` (not yet resolved)."""
    if pickle.load(f) != MAGIC_NUMBER:  # the header pickles hold only literals
        raise ValueError("not a legacy torch file (bad magic number)")
    if (version := pickle.load(f)) != PROTOCOL_VERSION:
        raise ValueError(f"unsupported legacy torch protocol version {version}")
    sys_info = pickle.load(f)
    if not sys_info.get("little_endian", False):
        raise ValueError("big-endian torch files are not supported")
    unpickler = LegacyUnpickler(f)
    obj = unpickler.load()
    keys = pickle.load(f)  # a list of str
    for key in keys:
        storage = unpickler.storages[str(key)]
        (numel,) = np.frombuffer(_read_exact(f, 8), dtype="<i8")
        if int(numel) != storage.numel:
            raise ValueError(f"storage {key}: header says {numel} elements, the pickle {storage.numel}")
        storage.data = np.frombuffer(_read_exact(f, storage.numel * storage.dtype.itemsize), dtype=storage.dtype)
    if missing := [k for k, s in unpickler.storages.items() if s.data is None]:
        raise ValueError(f"storages without data: {missing}")
    return obj


def export(source: Path, output: Path = OUTPUT) -> dict[str, npt.NDArray[np.float32]]:
    """Check ``source``'s sha256, read its ``model_state`` and write it to ``output`` (np.savez_compressed)."""
    raw = source.read_bytes()
    sha = hashlib.sha256(raw).hexdigest()
    if sha != SOURCE_SHA256:
        raise SystemExit(f"{source}: sha256 {sha}\nexpected {SOURCE_SHA256} (resemblyzer 0.1.4's pretrained.pt)")
    checkpoint = load_legacy(io.BytesIO(raw))
    state = checkpoint["model_state"]
    if set(state) != EXPECTED_KEYS | TRAINING_ONLY_KEYS:
        raise SystemExit(f"unexpected model_state keys: {sorted(state)}")
    arrays = {name: np.ascontiguousarray(state[name].array(), dtype=np.float32) for name in sorted(EXPECTED_KEYS)}
    write_npz(output, arrays)
    return arrays


def write_npz(path: Path, arrays: dict[str, npt.NDArray[np.float32]]) -> None:
    """What ``np.savez_compressed`` writes (one deflated ``NAME.npy`` per array), but byte-for-byte reproducible:
    ``savez_compressed`` stamps each member with the current time, which would change the npz's sha256 on every run."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, array in sorted(arrays.items()):
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, array, allow_pickle=False)
            archive.writestr(info, buffer.getvalue())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("source", type=Path, help="resemblyzer 0.1.4's pretrained.pt")
    parser.add_argument("-o", "--output", type=Path, default=OUTPUT, help=f"default: {OUTPUT}")
    args = parser.parse_args(argv)
    arrays = export(args.source, args.output)
    for name, array in arrays.items():
        print(f"{name:22} {array.shape!s:12} {array.dtype}")
    print(f"source sha256 {SOURCE_SHA256}")
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes)")
    print(f"npz sha256    {hashlib.sha256(args.output.read_bytes()).hexdigest()}")


if __name__ == "__main__":
    main(sys.argv[1:])
