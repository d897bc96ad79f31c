"""What decoding in worker processes costs: the same inputs decoded in-process and isolated, and the same file
requests through the service with ``decode_isolation`` off and on, alternated in one run.

    python bench/isolation.py            # ~1 min on 2 cores -> bench/results/isolation.json

Needs only the repository (clips from ``tests/data``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from common import loadavg, machine_info, write_report

from voxgate.audio.decode import decode
from voxgate.config import Settings
from voxgate.service import Service
from voxgate.types import TranscriptionOptions

HERE = Path(__file__).resolve().parent
DATA = HERE.parent / "tests" / "data"
INPUTS = [DATA / "en" / "jfk.flac", DATA / "en" / "spk1_snt1.wav", DATA / "multilingual" / "en-de-license.mp3"]


def timed(fn: Any, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return times


def ms(values: list[float]) -> float:
    return round(1000 * statistics.median(values), 2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--model", default="whisper/tiny.en")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "isolation.json")
    args = parser.parse_args(argv)
    load_before = loadavg()

    decodes: dict[str, dict[str, float]] = {}
    for path in INPUTS:
        data = path.read_bytes()
        decode(data, isolated=True)  # a warm worker, as a running server has
        plain: list[float] = []
        isolated: list[float] = []
        for _ in range(args.repeat):  # alternated, so drifting load hits both alike
            plain += timed(lambda d=data: decode(d, isolated=False), 1)
            isolated += timed(lambda d=data: decode(d, isolated=True), 1)
        decodes[path.name] = {"in_process_ms": ms(plain), "isolated_ms": ms(isolated)}
        decodes[path.name]["added_ms"] = round(
            decodes[path.name]["isolated_ms"] - decodes[path.name]["in_process_ms"], 2
        )

    requests: dict[str, float] = {}
    home = Path.home() / ".cache" / "voxgate"
    services = {
        on: Service(Settings(home=home, preload=[args.model], default_model=args.model, decode_isolation=on))
        for on in (False, True)
    }
    try:
        data = INPUTS[0].read_bytes()
        times: dict[bool, list[float]] = {False: [], True: []}
        for service in services.values():
            service.transcribe_file_sync(data, TranscriptionOptions(language="en"))  # warm
        for _ in range(max(3, args.repeat // 3)):
            for on, service in services.items():
                times[on] += timed(
                    lambda s=service: s.transcribe_file_sync(data, TranscriptionOptions(language="en")), 1
                )
        requests = {"in_process_ms": ms(times[False]), "isolated_ms": ms(times[True])}
        requests["ratio"] = round(requests["isolated_ms"] / requests["in_process_ms"], 3)
    finally:
        for service in services.values():
            service.close()

    report = {
        "benchmark": "isolation",
        "machine": machine_info(("av", "faster-whisper")),
        "load_average_before": load_before,
        "load_average_after": loadavg(),
        "decode_median": decodes,
        f"request_median_{args.model}_jfk_11s": requests,
    }
    write_report(args.out, report)
    print(f"load before {load_before}, after {report['load_average_after']}")
    for name, row in decodes.items():
        print(
            f"decode {name}: in-process {row['in_process_ms']} ms, isolated {row['isolated_ms']} ms "
            f"(+{row['added_ms']})"
        )
    print(
        f"file request ({args.model}, jfk 11 s): in-process {requests['in_process_ms']} ms, "
        f"isolated {requests['isolated_ms']} ms, x{requests['ratio']}"
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
