"""Wall time of `broadcaster send` with only the mirror enabled (the embedded defaults).

Runs the real CLI as a user would, N times in one fresh working directory (the journal and the site grow
as they would during an incident), interleaved with a bare interpreter start-up and an import of the CLI,
so the figures are read side by side on a shared, noisy machine.

    .venv/bin/python -m tests.bench.bench_send [--runs N] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def timed(argv: Sequence[str], cwd: Path) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROADCASTER_")}
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, check=True, capture_output=True, timeout=60)
    return time.perf_counter() - start


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_s": round(statistics.median(ordered), 4),
        "p90_s": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))], 4),
        "min_s": round(ordered[0], 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="3 runs, to check the benchmark itself works")
    args = parser.parse_args()
    runs = 3 if args.quick else args.runs
    python = sys.executable
    cases = {
        "python -c pass": [python, "-c", "pass"],
        "import broadcaster.cli": [python, "-c", "import broadcaster.cli"],
        "broadcaster send (mirror)": [
            python,
            "-m",
            "broadcaster",
            "send",
            "--title",
            "Bench incident",
            "--status",
            "investigating",
            "--message",
            "Measuring.",
            "--component",
            "API=degraded_performance",
        ],
    }
    samples: dict[str, list[float]] = {name: [] for name in cases}
    with tempfile.TemporaryDirectory(prefix="bench-send-") as workdir:
        for _ in range(runs):
            for name, argv in cases.items():
                samples[name].append(timed(argv, Path(workdir)))
    results = {name: summary(values) for name, values in samples.items()}
    send = results["broadcaster send (mirror)"]["median_s"]
    base = results["python -c pass"]["median_s"]
    print(f"{'what':28} {'median':>9} {'p90':>9} {'min':>9}")
    for name, figures in results.items():
        print(f"{name:28} {figures['median_s']:>8.3f}s {figures['p90_s']:>8.3f}s {figures['min_s']:>8.3f}s")
    print(f"send median = {send / base:.1f}x a bare interpreter start; {runs} runs each, interleaved")
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    print(json.dumps({"bench": "send", "runs": runs, "machine": machine, "results": results}))


if __name__ == "__main__":
    main()
