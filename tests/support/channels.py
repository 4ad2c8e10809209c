"""Channels for testing lanes and the CLI: what they do is scripted by the test.

ScriptedChannel and LatestChannel run in the test's own process and take their behaviour from
SCRIPTS; GateChannel works across processes (for crash tests): it holds every delivery until a gate
file exists, then appends the delivery to a sink file."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from channels.base import (
    Channel,
    ChannelContext,
    CheckResult,
    Job,
    Ordering,
    PermanentError,
    Receipt,
    TargetGone,
    TransientError,
)
from channels.registry import ChannelSpec

Behaviour = Callable[[Job], Awaitable[Receipt]]


@dataclass(frozen=True, slots=True)
class Call:
    delivery_id: str
    update_id: str
    incident_id: str
    target: str
    attempt: int
    started: float
    thread_parent: str | None


@dataclass
class Script:
    """Behaviour per call: `behave` decides; every call is recorded before it runs."""

    behave: Behaviour
    targets: list[str] = field(default_factory=lambda: ["t1"])
    calls: list[Call] = field(default_factory=list)

    def calls_for(self, update_id: str) -> list[Call]:
        return [call for call in self.calls if call.update_id == update_id]


SCRIPTS: dict[str, Script] = {}


async def deliver(job: Job) -> Receipt:
    return Receipt(detail=f"ok attempt {job.attempt}", external_id=f"post-{job.update.seq}")


def fail_transiently(message: str = "far end busy", retry_after: float | None = None) -> Behaviour:
    async def behave(_job: Job) -> Receipt:
        raise TransientError(message, retry_after=retry_after)

    return behave


def fail_permanently(message: str = "refused") -> Behaviour:
    async def behave(_job: Job) -> Receipt:
        raise PermanentError(message)

    return behave


def target_gone(message: str = "410 Gone") -> Behaviour:
    async def behave(_job: Job) -> Receipt:
        raise TargetGone(message)

    return behave


async def hang(_job: Job) -> Receipt:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


class ScriptedChannel(Channel):
    name = "scripted"

    def __init__(self, script: Script) -> None:
        self.script = script

    @classmethod
    def create(cls, context: ChannelContext) -> Self:
        return cls(SCRIPTS[cls.name])

    async def send(self, job: Job) -> Receipt:
        self.script.calls.append(
            Call(
                job.delivery_id, job.update.id, job.incident.id, job.target, job.attempt, time.time(), job.thread_parent
            )
        )
        return await self.script.behave(job)

    async def check(self) -> list[CheckResult]:
        return [CheckResult(target=target, ok=True, detail="scripted") for target in self.script.targets]


class LatestChannel(ScriptedChannel):
    name = "latest"


class HangChannel(ScriptedChannel):
    name = "hang"


def scripted_spec(name: str, ordering: Ordering = Ordering.IN_ORDER) -> ChannelSpec:
    class_name = {"scripted": "ScriptedChannel", "latest": "LatestChannel", "hang": "HangChannel"}[name]
    return ChannelSpec(
        name=name,
        module=__name__,
        class_name=class_name,
        ordering=ordering,
        enabled=lambda _settings: name in SCRIPTS,
        targets=lambda _settings: SCRIPTS[name].targets,
    )


GATE_ENV = "BROADCASTER_TEST_GATE"
SINK_ENV = "BROADCASTER_TEST_SINK"


class GateChannel(Channel):
    """Holds each delivery until the file named by $BROADCASTER_TEST_GATE exists, then appends
    "<delivery id> <update id>" to the file named by $BROADCASTER_TEST_SINK."""

    name = "gate"

    def __init__(self, gate: Path, sink: Path) -> None:
        self.gate = gate
        self.sink = sink

    @classmethod
    def create(cls, context: ChannelContext) -> Self:
        return cls(Path(os.environ[GATE_ENV]), Path(os.environ[SINK_ENV]))

    async def send(self, job: Job) -> Receipt:
        while not self.gate.exists():  # noqa: ASYNC110 - the gate is opened by another process, so poll the file
            await asyncio.sleep(0.02)
        with self.sink.open("a") as sink:
            sink.write(f"{job.delivery_id} {job.update.id}\n")
        return Receipt(detail="through the gate")

    async def check(self) -> list[CheckResult]:
        return [CheckResult(target="gate", ok=True, detail=f"gate {'open' if self.gate.exists() else 'closed'}")]


GATE_SPEC = ChannelSpec(
    name="gate",
    module=__name__,
    class_name="GateChannel",
    ordering=Ordering.IN_ORDER,
    enabled=lambda _settings: GATE_ENV in os.environ,
    targets=lambda _settings: ["gate"],
)
