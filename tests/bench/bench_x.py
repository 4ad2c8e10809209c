"""Benchmark of the X channel: composing posts (X's weighted counting and shortening), and posting through
tweepy's real client on the lane's one shared session versus a new session (new TLS connection) per post.

    .venv/bin/python -m tests.bench.bench_x            # full size
    .venv/bin/python -m tests.bench.bench_x --quick    # a few seconds (CI smoke run)

The fake X API (tests/channels/x/fake_x.py, which verifies every OAuth signature) runs in a separate process that
this script starts and stops. Memory is this process's peak RSS (ru_maxrss, KiB). Prints a table, then one
JSON line with every figure."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import selectors
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from channels.base import ChannelContext
from channels.x import XChannel
from channels.x.text import compose_post
from config import Settings, load_settings
from tests.channels.x.fake_x import CREDENTIALS
from tests.channels.x.jobs import PUBLIC_URL, NoJournal, make_job

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 20.0
SIZES = {"quick": {"posts": 20, "compositions": 300}, "full": {"posts": 400, "compositions": 5000}}
MESSAGES = {  # name in the JSON line: (label in the table, a message that must be shortened)
    "ascii": ("ASCII", "We are seeing elevated error rates on the public API in eu-west. " * 12),
    "cjk": ("CJK", "数据库连接池耗尽导致接口超时我们正在扩容并切换到备用区域。" * 12),
    "emoji_links": ("emoji and links", "🔥 Details https://example.com/postmortem/" + "x" * 80 + " 👩🏽\u200d💻 " * 30),
}


class FakeXProcess:
    """The fake X API in a child process, stopped by its PID."""

    def __init__(self, ca_file: Path) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.channels.x.fake_x", "--ca-file", str(ca_file)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.port = self._read_port()

    def _read_port(self) -> int:
        assert self.process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            if not selector.select(timeout=START_TIMEOUT):
                self.stop()
                raise RuntimeError(f"the fake X API did not start within {START_TIMEOUT:g}s")
        line = self.process.stdout.readline().split()
        if len(line) != 2 or line[0] != "port":
            self.stop()
            raise RuntimeError(f"unexpected start-up line from the fake X API: {line}")
        return int(line[1])

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()


def settings_for(workdir: Path, port: int, ca_file: Path) -> Settings:
    config = workdir / "broadcaster.toml"
    config.write_text(f"""
[mirror]
public_url = "{PUBLIC_URL}"
[x]
enabled = true
consumer_key = "{CREDENTIALS.consumer_key}"
consumer_secret = "{CREDENTIALS.consumer_secret}"
access_token = "{CREDENTIALS.token}"
access_token_secret = "{CREDENTIALS.token_secret}"
[network]
resolve = {{ "api.twitter.com" = "127.0.0.1:{port}" }}
ca_file = "{ca_file}"
""")
    return load_settings(config)


def compose_rate(message: str, count: int, *, warm_up: int = 20) -> float:
    started = 0.0
    for index in range(-warm_up, count):
        if index == 0:
            started = time.perf_counter()
        compose_post(
            status="Identified",
            impact="Major outage",
            title="API errors",
            message=f"{index} {message}",
            link=f"{PUBLIC_URL}/incidents/abcdefghjkmn.html",
        )
    return count / (time.perf_counter() - started)


async def post_rate(settings: Settings, count: int, *, shared_session: bool, tag: str) -> float:
    """Posts per second, one after another as the X lane sends them (its concurrency is 1)."""
    context = ChannelContext(settings, NoJournal())
    shared = XChannel.create(context) if shared_session else None
    started = time.perf_counter()
    try:
        for index in range(count):
            channel = shared or XChannel.create(context)
            try:
                await channel.send(make_job(message=f"Benchmark post {index} ({tag}): error rates are up."))
            finally:
                if shared is None:
                    await channel.aclose()
    finally:
        if shared is not None:
            await shared.aclose()
    return count / (time.perf_counter() - started)


def peak_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def table(rows: list[tuple[str, float, float]]) -> str:
    lines = [f"{'measure':<44}{'per second':>12}{'ratio':>9}"]
    lines += [f"{name:<44}{rate:>12,.1f}{ratio:>9.2f}" for name, rate, ratio in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="X channel benchmark")
    parser.add_argument("--quick", action="store_true", help="a tiny size that runs in a few seconds")
    mode = "quick" if parser.parse_args(argv).quick else "full"
    size = SIZES[mode]
    composed = {name: compose_rate(message, size["compositions"]) for name, (_, message) in MESSAGES.items()}
    with tempfile.TemporaryDirectory(prefix="bench-x-") as directory:
        workdir = Path(directory)
        ca_file = workdir / "ca.pem"
        fake = FakeXProcess(ca_file)
        try:
            settings = settings_for(workdir, fake.port, ca_file)
            asyncio.run(post_rate(settings, 3, shared_session=True, tag="warm-up"))  # warm up imports and the CA load
            rss_before_posts = peak_rss_kib()
            shared = asyncio.run(post_rate(settings, size["posts"], shared_session=True, tag="shared"))
            per_post = asyncio.run(post_rate(settings, size["posts"], shared_session=False, tag="per-post"))
        finally:
            fake.stop()
    rss_peak = peak_rss_kib()

    baseline = composed["ascii"]
    rows = [(f"compose: {MESSAGES[name][0]}", rate, rate / baseline) for name, rate in composed.items()]
    rows += [
        ("post: shared session (the lane)", shared, 1.0),
        ("post: new session + TLS context per post", per_post, per_post / shared),
    ]
    print(f"X channel benchmark ({mode}): {size['compositions']} compositions per kind, {size['posts']} posts per way")
    print(table(rows))
    print(f"peak RSS {rss_peak} KiB (before posting {rss_before_posts} KiB)")
    figures = {
        "bench": "x",
        "mode": mode,
        "compositions": size["compositions"],
        "posts": size["posts"],
        **{f"compose_{name}_per_s": round(rate, 1) for name, rate in composed.items()},
        "post_shared_session_per_s": round(shared, 1),
        "post_session_per_post_per_s": round(per_post, 1),
        "shared_session_speedup": round(shared / per_post, 2),
        "rss_before_posts_kib": rss_before_posts,
        "rss_peak_kib": rss_peak,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
