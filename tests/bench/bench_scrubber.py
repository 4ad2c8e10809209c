"""What scrubbing secrets costs with many webhook targets: building the scrubber, one scrub, and the start of
a `broadcaster send`, which builds it before any lane runs.

    .venv/bin/python -m tests.bench.bench_scrubber                # 10,000 targets
    .venv/bin/python -m tests.bench.bench_scrubber --quick        # 200 targets: a smoke run
    .venv/bin/python -m tests.bench.bench_scrubber --tree DIR     # the CLI run from another checkout

Each target has a Slack-style URL (its token in the path) and a signing secret. In-process, the scrubber
is built from the settings (Settings.scrubber: every secret collected, then indexed) `--repeat` times,
and a 1 KB text is scrubbed with no secret in it and with a URL, a Basic header and a percent-encoded
URL in it. Out of process, `broadcaster send --channel mirror` runs with all the targets configured (the
webhook lane is not started, but the scrubber is built before anything is sent) and with none, so the
difference is what the targets cost the start. With --tree, the CLI comes from DIR instead (for example
`git archive HEAD | tar -x -C /tmp/before`), to compare with an earlier version."""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from urllib.parse import quote

from config.scrubber import Scrubber
from config.settings import Settings
from config.webhook import WebhookSettings, WebhookTarget

SEND = ["send", "--channel", "mirror", "--title", "Bench incident", "--status", "investigating", "--message", "M."]
SENTENCE = "The receiver answered HTTP 500 Internal Server Error after 30 seconds; retrying with backoff. "


def target_url(number: int) -> str:
    return f"https://hooks.example.com/services/T{number:08d}/B{number:08d}/{number:024x}"


def signing_secret(number: int) -> str:
    return "whsec_" + base64.b64encode(number.to_bytes(24, "big")).decode()


def webhook_toml(targets: int) -> str:
    tables = [f'[[webhook.targets]]\nurl = "{target_url(n)}"\nsecret = "{signing_secret(n)}"\n' for n in range(targets)]
    return "[webhook]\nenabled = true\n" + "".join(tables) if targets else ""


def median_seconds(run: Callable[[], object], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def in_process(targets: int, repeat: int) -> dict[str, float]:
    settings = Settings(
        webhook=WebhookSettings(
            enabled=True,
            targets=[WebhookTarget(url=target_url(n), secret=signing_secret(n)) for n in range(targets)],
        )
    )

    def build() -> Scrubber:
        vars(settings).pop("scrubber", None)  # what the cached property keeps: build afresh every time
        return settings.scrubber

    build_s = median_seconds(build, repeat)
    collect_s = median_seconds(settings.secret_values, repeat)
    scrub = build()
    plain = (SENTENCE * 20)[:1024]
    url = target_url(targets // 2)
    basic = "Basic " + base64.b64encode(b"user:" + signing_secret(1).encode()).decode()
    holding = f"{plain[:600]} {url} {basic} next={quote(url, safe='')}"[:1024]
    if scrub(holding) == holding or scrub(plain) is not plain:
        raise SystemExit("the scrubber does not scrub what it should")
    calls = max(50, repeat * 20)
    return {
        "build_ms": round(build_s * 1000, 2),
        "collect_ms": round(collect_s * 1000, 2),
        "scrub_1kb_clean_us": round(median_seconds(lambda: scrub(plain), calls) * 1e6, 1),
        "scrub_1kb_with_secrets_us": round(median_seconds(lambda: scrub(holding), calls) * 1e6, 1),
    }


def cli_start(targets: int, runs: int, tree: Path | None) -> dict[str, float]:
    """Median wall time of `broadcaster send --channel mirror` with `targets` webhook targets, and with none."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROADCASTER_")}
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    command = [sys.executable, "-m", "broadcaster", *SEND]
    figures = {}
    for count, name in ((targets, "cli_send_s"), (0, "cli_send_no_targets_s")):
        with tempfile.TemporaryDirectory(prefix="bench-scrubber-") as workdir:
            Path(workdir, "broadcaster.toml").write_text(webhook_toml(count))
            run = partial(subprocess.run, command, cwd=workdir, env=env, check=True, capture_output=True, timeout=120)
            figures[name] = round(median_seconds(run, runs), 3)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 targets, few repeats: a smoke run")
    parser.add_argument("--targets", type=int, help="webhook targets (default 10,000, or 200 with --quick)")
    parser.add_argument("--repeat", type=int, help="in-process builds to take the median of (default 7)")
    parser.add_argument("--runs", type=int, help="CLI runs to take the median of (default 5)")
    parser.add_argument("--tree", type=Path, help="run the CLI from this checkout instead")
    args = parser.parse_args()
    targets = args.targets or (200 if args.quick else 10_000)
    repeat = args.repeat or (3 if args.quick else 7)
    runs = args.runs or (1 if args.quick else 5)
    figures = in_process(targets, repeat)
    figures |= cli_start(targets, runs, args.tree)
    print(
        f"{targets} webhook targets: scrubber built in {figures['build_ms']} ms (collecting the secrets "
        f"{figures['collect_ms']} ms); a 1 KB scrub {figures['scrub_1kb_clean_us']} us clean, "
        f"{figures['scrub_1kb_with_secrets_us']} us with secrets"
    )
    where = f" (CLI from {args.tree})" if args.tree else ""
    print(
        f"broadcaster {' '.join(SEND[:3])} ...: {figures['cli_send_s']} s with the targets, "
        f"{figures['cli_send_no_targets_s']} s without{where}"
    )
    print(json.dumps({"bench": "scrubber", "targets": targets, **figures}))


if __name__ == "__main__":
    main()
