"""Pickup latency: how long `broadcaster serve` takes to act on what another process of its host did to the
SQLite journal, with the notices (store/sqlite/notices.py) and without them, side by side in one run.

    .venv/bin/python -m tests.bench.bench_pickup             # 10 interleaved rounds of each
    .venv/bin/python -m tests.bench.bench_pickup --quick     # 1 round of each

Processes, on this one machine, started and stopped by PID:
  service   `broadcaster serve` at its default poll (1 s) and sweep (15 s) intervals, the webhook channel on
            to a receiver in this process;
  this one  the receiver, and what acts on the journal:
  - journaled: this process journals an update (as `send --wait 0` or any tool would); the figure is the
    time from the journal's commit to the receiver getting the webhook. Without notices, serve finds it
    at its next poll.
  - killed send: `broadcaster send --channel webhook` takes the delivery and is killed (SIGKILL) while the
    receiver holds its request; the figure is the time from the kill to serve's own request. Without
    notices, serve takes the lease back at its next sweep.
"Without notices" is the same code with notices.announce() made a no-op in the process that acts (this one, or
the killed send's), so serve hears nothing and falls back on its poll and sweep."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from aiohttp import web

from tests.bench.bench_intake import ServiceProcess
from tests.support.helpers import cli_env

SILENCED = (
    "import sys; import broadcaster.store.sqlite.notices as notices; notices.announce = lambda *_: None; "
    "from broadcaster.cli import main; sys.argv[0] = 'broadcaster'; raise SystemExit(main())"
)
"""`python -c` for a broadcaster CLI that announces nothing."""


class Receiver:
    """Notes when each request came; holds a request open while `holding` is set (until released)."""

    def __init__(self) -> None:
        self.arrivals: list[float] = []
        self.holding = False
        self._release = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/hook"

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def release(self) -> None:
        self._release.set()
        self._release = asyncio.Event()

    async def _handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.arrivals.append(time.monotonic())
        if self.holding:
            self.holding = False  # only the first: the retry after the kill is answered at once
            await self._release.wait()
        return web.Response(status=204)

    async def next_arrival(self, after: int, within: float = 60.0) -> float:
        """When request number `after` + 1 came."""
        deadline = time.monotonic() + within
        while len(self.arrivals) <= after:
            if time.monotonic() > deadline:
                raise SystemExit(f"no request {after + 1} within {within} s")
            await asyncio.sleep(0.001)
        return self.arrivals[after]


async def journaled(config: Path, receiver: Receiver, *, notices: bool, n: int) -> float:
    """Milliseconds from this process's commit of an update to serve's webhook request for it."""
    import broadcaster.store.sqlite.notices as notice_module
    from broadcaster.domain.models import UpdateDraft
    from broadcaster.runtime import open_runtime
    from config import load_settings

    announce = notice_module.announce
    if not notices:
        notice_module.announce = lambda *_: None
    runtime = await open_runtime(load_settings(config))
    try:
        before = len(receiver.arrivals)
        draft = UpdateDraft(title=f"Pickup {n}", status="investigating", message="Journaled elsewhere.")
        await runtime.submit(draft)
        committed = time.monotonic()
    finally:
        notice_module.announce = announce
        await runtime.close()
    return (await receiver.next_arrival(before) - committed) * 1000


async def killed_send(workdir: Path, config: Path, receiver: Receiver, *, notices: bool, n: int) -> float:
    """Milliseconds from SIGKILL of a `send` holding the delivery to serve's own request."""
    program = ["-m", "broadcaster"] if notices else ["-c", SILENCED]
    before = len(receiver.arrivals)
    receiver.holding = True
    sender = await asyncio.create_subprocess_exec(
        sys.executable,
        *program,
        "send",
        "--config",
        str(config),
        "--channel",
        "webhook",
        "--title",
        f"Killed {n}",
        "--status",
        "investigating",
        "--message",
        "Taken over.",
        cwd=workdir,
        env=cli_env(),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    await receiver.next_arrival(before)  # send's request, held open
    sender.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    await sender.wait()
    taken_over = await receiver.next_arrival(before + 1)
    receiver.release()
    return (taken_over - killed) * 1000


def summary(samples: list[float]) -> dict[str, float]:
    return {"median_ms": round(statistics.median(samples), 1), "max_ms": round(max(samples), 1)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="one round of each")
    args = parser.parse_args()
    rounds = 1 if args.quick else args.rounds
    receiver = Receiver()
    await receiver.start()
    with tempfile.TemporaryDirectory(prefix="bench-pickup-") as temporary:
        workdir = Path(temporary)
        config = workdir / "broadcaster.toml"
        config.write_text(
            f'[service]\ndata_dir = "{workdir / "var"}"\n[mirror]\nenabled = false\n'
            f'[webhook]\nenabled = true\n[[webhook.targets]]\nurl = "{receiver.url}"\n'
        )
        service = ServiceProcess(config, workdir)
        figures: dict[str, dict[str, list[float]]] = {
            "journaled": {"notices": [], "polling": []},
            "killed_send": {"notices": [], "sweep": []},
        }
        try:
            for n in range(rounds):
                for notices, label in ((True, "notices"), (False, "polling")):
                    figures["journaled"][label].append(await journaled(config, receiver, notices=notices, n=n))
                for notices, label in ((True, "notices"), (False, "sweep")):
                    figures["killed_send"][label].append(
                        await killed_send(workdir, config, receiver, notices=notices, n=n)
                    )
                print(f"round {n + 1}/{rounds} done", file=sys.stderr)
        finally:
            service.stop()
            await receiver.stop()
    result = {
        kind: {label: summary(samples) for label, samples in by_label.items()} for kind, by_label in figures.items()
    }
    print(json.dumps({"rounds": rounds, **result}))


if __name__ == "__main__":
    asyncio.run(main())
