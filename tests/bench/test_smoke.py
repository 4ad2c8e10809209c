"""Every benchmark in tests/bench still runs (at its --quick size) and ends with its JSON figures.

No figure is asserted: speed is measured by `make bench` and recorded in the README, never judged on a
shared CI machine. This only keeps the benchmarks from rotting."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.support.helpers import REPO, cli_env

BENCHMARKS = sorted(path.stem for path in (REPO / "tests" / "bench").glob("bench_*.py"))


def test_every_benchmark_is_listed() -> None:
    assert BENCHMARKS == [
        "bench_email",
        "bench_failover",
        "bench_intake",
        "bench_journal",
        "bench_lane",
        "bench_pickup",
        "bench_render",
        "bench_scrubber",
        "bench_send",
        "bench_subscribers",
        "bench_webhook",
        "bench_webhook_updates",
        "bench_x",
    ]


def quick_figures(name: str, *options: str) -> dict[str, object]:
    """Run a benchmark at its --quick size; its last line of output, the JSON figures."""
    command = [sys.executable, "-m", f"tests.bench.{name}", "--quick", *options]
    result = subprocess.run(command, cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=110, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert isinstance(figures, dict)
    return figures


@pytest.mark.parametrize("name", BENCHMARKS)
def test_the_benchmark_runs_at_its_quick_size(name: str) -> None:
    assert quick_figures(name)


def test_the_journal_benchmark_runs_after_a_history() -> None:
    """`bench_journal --history N` journals N finished deliveries before it measures, counted in the journal."""
    assert quick_figures("bench_journal", "--history", "120")["history"] == 120
