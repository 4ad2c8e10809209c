"""Long sends (issue 22): on a terminal `send` keeps going until everything settles, with a bar and the time
left per channel, and Ctrl-C hands the rest to the journal (exit 3); without one it waits the usual 60 s,
prints a line per channel change rather than per delivery, and a reader that stops reading never stops
the deliveries. The CLI runs as a child process on a real pseudo-terminal or pipe, against a real aiohttp
webhook receiver."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import pty
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.channels.webhook.receiver import Answer, Receiver
from tests.support.helpers import cli_env, eventually

SEND = ("send", "--title", "Checkout errors", "--status", "investigating", "--message", "Some payments fail.")
RESUME = "`broadcaster retry` or `broadcaster serve` resumes them"
INTERRUPTED = "Interrupted: finishing the attempts in flight (up to 5 s)..."
BAR = re.compile(r"\[[█░#.]{20}\]")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    started = await Receiver().start()
    yield started
    await started.stop()


def configure_webhooks(workdir: Path, receiver: Receiver, count: int, answer: Answer) -> None:
    """`count` webhook targets on the receiver, each answering `answer`; the mirror off."""
    for n in range(count):
        receiver.script(f"/t{n}", answer)
    targets = "".join(f'[[webhook.targets]]\nurl = "{receiver.url(f"/t{n}")}"\n' for n in range(count))
    (workdir / "broadcaster.toml").write_text(f"[mirror]\nenabled = false\n[webhook]\nenabled = true\n{targets}")


async def start_send(cwd: Path, *, stdout: int, stderr: int, stdin: int | None = None) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "broadcaster",
        *SEND,
        cwd=cwd,
        env=cli_env({"PYTHONIOENCODING": "utf-8"}),
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
    )


async def piped_send(cwd: Path) -> tuple[int, str, str]:
    """`send` with pipes for its output, read to the end: (exit code, stdout, stderr)."""
    process = await start_send(cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    async with asyncio.timeout(120):
        out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


class Terminal:
    """The CLI with a pseudo-terminal for its standard streams, as a person at a terminal runs it."""

    def __init__(self, process: asyncio.subprocess.Process, master: int) -> None:
        self.process = process
        self._master = master
        self._output = bytearray()
        asyncio.get_running_loop().add_reader(master, self._read)

    @classmethod
    async def send(cls, cwd: Path) -> Terminal:
        master, slave = pty.openpty()
        process = await start_send(cwd, stdin=slave, stdout=slave, stderr=slave)
        os.close(slave)
        return cls(process, master)

    @property
    def text(self) -> str:
        return self._output.decode("utf-8", "replace")

    def _read(self) -> None:
        try:
            data = os.read(self._master, 65536)
        except OSError:  # EIO: the child has gone and the terminal is closed
            data = b""
        if data:
            self._output += data
        else:
            asyncio.get_running_loop().remove_reader(self._master)

    async def shows(self, pattern: str, *, times: int = 1) -> None:
        async def seen() -> bool:
            return len(re.findall(pattern, self.text)) >= times

        await eventually(seen, within=60)

    def press_ctrl_c(self) -> None:
        """What the terminal does on Ctrl-C: SIGINT to the program in the foreground."""
        self.process.send_signal(signal.SIGINT)

    async def exit_code(self) -> int:
        async with asyncio.timeout(60):
            code = await self.process.wait()
        await asyncio.sleep(0.1)  # the last output, still in the terminal's buffer
        self.close()
        return code

    def close(self) -> None:
        """Read what is left and close the terminal; a child still running (a failed test) is killed."""
        if self._master < 0:
            return
        if self.process.returncode is None:
            self.process.kill()
        self._read()
        asyncio.get_running_loop().remove_reader(self._master)
        os.close(self._master)
        self._master = -1


@pytest.fixture
async def terminals() -> AsyncIterator[list[Terminal]]:
    """Terminals a test opens (append them), closed at its end whatever happened."""
    opened: list[Terminal] = []
    yield opened
    for terminal in opened:
        terminal.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                await terminal.process.wait()


async def test_on_a_terminal_send_shows_a_bar_and_the_time_left_and_ctrl_c_exits_3_saying_how_to_resume(
    workdir: Path, receiver: Receiver, terminals: list[Terminal]
) -> None:
    configure_webhooks(workdir, receiver, 300, Answer(status=204, delay=2.0))
    terminal = await Terminal.send(workdir)
    terminals.append(terminal)
    await terminal.shows(r"webhook .*\d+/300 delivered.* about \d+[smh]\S* left")
    assert BAR.search(terminal.text), terminal.text
    terminal.press_ctrl_c()
    assert await terminal.exit_code() == 3
    assert INTERRUPTED in terminal.text
    assert RESUME in terminal.text
    assert len({request.path for request in receiver.received}) < 300


async def test_ctrl_c_says_at_once_what_it_does_and_a_second_one_still_exits_3(
    workdir: Path, receiver: Receiver, terminals: list[Terminal]
) -> None:
    """The receivers take 20 s to answer: the attempts in flight outlast the 5 s given them, so the message
    must come while they are being finished, and a second Ctrl-C meanwhile must not turn exit 3 into 130."""
    configure_webhooks(workdir, receiver, 3, Answer(status=204, delay=20.0))
    terminal = await Terminal.send(workdir)
    terminals.append(terminal)

    async def all_in_flight() -> bool:
        return len(receiver.received) == 3

    await eventually(all_in_flight, within=60)
    terminal.press_ctrl_c()
    await terminal.shows(re.escape(INTERRUPTED))
    assert terminal.process.returncode is None, "the message came only once the attempts were handed back"
    terminal.press_ctrl_c()
    assert await terminal.exit_code() == 3
    assert RESUME in terminal.text
    assert terminal.text.count(INTERRUPTED) == 1
    for raw in ("Traceback", "KeyboardInterrupt", "broadcaster: interrupted", "Task was destroyed"):
        assert raw not in terminal.text


async def test_on_a_terminal_send_waits_for_a_retry_due_after_60_s_where_a_pipe_hands_it_over(
    workdir: Path, receiver: Receiver, terminals: list[Terminal]
) -> None:
    """The receiver asks for two minutes' patience (Retry-After: 120). Without a terminal the default wait
    (60 s) cannot see the retry through: send hands it to the journal at once and exits 3. On a terminal
    send keeps waiting until the person presses Ctrl-C."""
    later = Answer(status=503, headers={"Retry-After": "120"})
    pipe_dir, terminal_dir = workdir / "pipe", workdir / "terminal"  # a journal each: the target's order is per journal
    for directory in (pipe_dir, terminal_dir):
        directory.mkdir()
        configure_webhooks(directory, receiver, 1, later)
    code, _out, err = await piped_send(pipe_dir)
    assert code == 3, err
    assert RESUME in err
    assert "Interrupted" not in err

    receiver.script("/t0", later)
    terminal = await Terminal.send(terminal_dir)
    terminals.append(terminal)
    await terminal.shows(r"next try in 1[0-2]\ds: HTTP 503", times=3)  # three redraws later, still waiting
    assert terminal.process.returncode is None
    terminal.press_ctrl_c()
    assert await terminal.exit_code() == 3
    assert INTERRUPTED in terminal.text
    assert RESUME in terminal.text


async def test_without_a_terminal_2000_failing_targets_print_a_line_per_channel_change(
    workdir: Path, receiver: Receiver
) -> None:
    configure_webhooks(workdir, receiver, 2000, Answer(status=400, body=b"no such hook"))
    code, stdout, stderr = await piped_send(workdir)
    assert code == 3, stderr
    assert len({request.path for request in receiver.received}) == 2000
    progress = [line for line in stderr.splitlines() if line.startswith("[")]
    phases = [line.split("webhook (2000 targets): ")[1].split(" ")[0] for line in progress]
    assert phases == ["sending", "failing", "finished:"], stderr
    assert "finished: 0/2000 delivered, 2000 failed: HTTP 400" in progress[-1]
    assert len(stderr.splitlines()) <= 6, stderr  # journaled, the three changes, the summary and its remedy
    assert stdout.splitlines()[1].split()[:5] == ["webhook", "2000", "2000", "failed", "2000"], stdout
    assert len(stdout.splitlines()) == 3, stdout  # one row per channel, and where to see every target


def full_pipe() -> tuple[int, int]:
    """A pipe already full, as one is when its reader has stopped reading: (read end, write end)."""
    read_end, write_end = os.pipe()
    flags = fcntl.fcntl(write_end, fcntl.F_GETFL)
    fcntl.fcntl(write_end, fcntl.F_SETFL, flags | os.O_NONBLOCK)
    with contextlib.suppress(BlockingIOError):
        for _ in range(1024):  # a pipe holds 64 KiB unless raised: bounded all the same
            os.write(write_end, b"x" * 4096)
    fcntl.fcntl(write_end, fcntl.F_SETFL, flags)  # the child writes to it as to any pipe: blocking
    return read_end, write_end


async def test_a_reader_that_stops_reading_never_stops_the_deliveries(workdir: Path, receiver: Receiver) -> None:
    configure_webhooks(workdir, receiver, 200, Answer(status=204))
    read_end, write_end = full_pipe()
    process = await start_send(workdir, stdout=asyncio.subprocess.DEVNULL, stderr=write_end)
    os.close(write_end)
    try:

        async def all_delivered() -> bool:
            return len(set(receiver.answered)) == 200

        await eventually(all_delivered, within=60)  # while nobody reads what send writes
    finally:
        os.set_blocking(read_end, False)
        async with asyncio.timeout(60):
            while process.returncode is None:  # now read it all, so that send can say so and exit
                with contextlib.suppress(BlockingIOError):
                    while os.read(read_end, 65536):
                        pass
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.05):
                        await process.wait()
        os.close(read_end)
    assert process.returncode == 0
