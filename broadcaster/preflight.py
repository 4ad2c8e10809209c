"""Preflight: is every enabled channel ready to deliver (reachable, its credentials accepted), and is the
journal readable, found out without messaging anyone. `broadcaster check` prints it (`--json` for
monitoring); `serve` runs it every [service] check_interval seconds and shows the latest on /readyz and
/metrics, so an expired token or a moved relay is seen before an incident needs the channel."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any, Final, Literal

from broadcaster.domain.errors import StoreError
from broadcaster.domain.records import record
from broadcaster.runtime import Runtime
from channels.base import ChannelContext, CheckResult
from config import CHANNEL_NAMES, Settings
from config.secrets import mask_url

CHECK_TIMEOUT: Final = 30.0
"""Seconds one channel's check may take, all its targets together."""

Verdict = Literal["ok", "failed", "skipped"]


@record
class PreflightResult:
    channel: str
    """A channel's name, or "journal"."""
    target: str
    verdict: Verdict
    detail: str


@record
class Preflight:
    checked_at: float
    """Epoch seconds when the check started."""
    results: tuple[PreflightResult, ...]

    @property
    def ok(self) -> bool:
        return all(result.verdict != "failed" for result in self.results)

    def failed_by_channel(self) -> dict[str, int]:
        """Failed results per channel, every channel checked included at 0."""
        counts = {result.channel: 0 for result in self.results}
        for result in self.results:
            counts[result.channel] += result.verdict == "failed"
        return counts

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked_at": datetime.fromtimestamp(self.checked_at, UTC).isoformat(timespec="seconds"),
            "results": [
                {"channel": r.channel, "target": r.target, "verdict": r.verdict, "detail": r.detail}
                for r in self.results
            ],
        }


async def run_preflight(runtime: Runtime) -> Preflight:
    """The journal, then every channel this build has: checked when enabled, skipped otherwise. Every detail
    is scrubbed of secrets (a channel's error may quote a URL with its token)."""
    started = runtime.clock()
    scrub = runtime.settings.scrubber
    results = [await _journal(runtime)]
    active = runtime.active_channels()
    context = ChannelContext(runtime.settings, runtime.store, drill=runtime.drill)
    for name in CHANNEL_NAMES:
        if name not in active:
            results.append(PreflightResult(channel=name, target="*", verdict="skipped", detail="not enabled"))
            continue
        for checked in await _check(runtime, name, context):
            verdict: Verdict = "ok" if checked.ok else "failed"
            detail = scrub(checked.detail)
            results.append(PreflightResult(channel=name, target=scrub(checked.target), verdict=verdict, detail=detail))
    return Preflight(checked_at=started, results=tuple(results))


async def _journal(runtime: Runtime) -> PreflightResult:
    store = runtime.store
    shown = mask_url(store.url, keep_path=True)
    try:
        await store.controls()  # one small read: the journal answers
    except StoreError as exc:
        return PreflightResult(
            channel="journal", target=shown, verdict="failed", detail=runtime.settings.scrubber(str(exc))
        )
    return PreflightResult(channel="journal", target=shown, verdict="ok", detail="readable")


def journal_unreachable(settings: Settings, exc: StoreError, *, at: float) -> Preflight:
    """The preflight when the journal cannot even be opened: it failed, and no channel could be checked."""
    shown = mask_url(settings.store_url, keep_path=True)
    failed = PreflightResult(channel="journal", target=shown, verdict="failed", detail=settings.scrubber(str(exc)))
    return Preflight(checked_at=at, results=(failed,))


async def _check(runtime: Runtime, name: str, context: ChannelContext) -> list[CheckResult]:
    channel = runtime.registry.get(name).load().create(context)
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            return await channel.check()
    except TimeoutError:
        return [CheckResult(target="*", ok=False, detail=f"no answer within {CHECK_TIMEOUT:g}s")]
    except Exception as exc:  # a channel's bug must not hide the other channels' results
        return [CheckResult(target="*", ok=False, detail=f"the check itself failed: {type(exc).__name__}")]
    finally:
        await channel.aclose()
