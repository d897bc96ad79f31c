"""The client SDK is light: importing it loads no ML library, no media decoder and no server."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import voxgate

HEAVY = (
    "onnxruntime",
    "parselmouth",
    "ctranslate2",
    "faster_whisper",
    "scipy",
    "ray",
    "psycopg",
    "av",
    "fastapi",
    "uvicorn",
)
"""Modules a client never needs at import time. PyAV is loaded by ``stream_file`` only, when it decodes a file."""


ROOT = Path(voxgate.__file__).resolve().parent.parent
"""Run from the checkout under test, so the child imports this ``voxgate`` (``-c`` puts the cwd first on the path)."""


def _loaded_after(statement: str) -> list[str]:
    code = f"import json, sys, voxgate; {statement}; print(json.dumps([voxgate.__file__, *sorted(sys.modules)]))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120, cwd=ROOT
    )
    origin, *loaded = json.loads(out.stdout)
    assert Path(origin).resolve().parent == ROOT / "voxgate"
    return loaded


def test_importing_the_client_loads_no_heavy_library() -> None:
    loaded = _loaded_after("import voxgate.client")
    assert "voxgate.client.stream" in loaded  # the probe is real: the whole SDK was imported
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY)
    assert heavy == []
    core = sorted(m for m in loaded if m.startswith(("voxgate.analysis", "voxgate.engines", "voxgate.server")))
    assert core == []


def test_the_probe_sees_heavy_libraries_when_they_load() -> None:
    # The same probe after importing what the server imports: it must notice them, or the test above proves nothing.
    loaded = _loaded_after("import voxgate.analysis.profile")
    assert {"onnxruntime", "parselmouth"} <= set(loaded)
