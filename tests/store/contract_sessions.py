"""The store contract's web sessions: a logout and a redeemed login link, written through one store object, are
seen at once by another on the same journal (another instance), until their `until`. Part of StoreContract."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from broadcaster.store import Store

LINK = "login-link"


class SessionContract:
    def another(self, journal: Store) -> Store:
        """A second store object, not yet open, on the same journal as `journal`: what another instance of
        the service holds (each backend opens its own way)."""
        raise NotImplementedError

    @asynccontextmanager
    async def instance(self, journal: Store) -> AsyncIterator[Store]:
        other = self.another(journal)
        await other.open()
        try:
            yield other
        finally:
            await other.close()

    async def test_a_session_revoked_on_one_instance_is_refused_on_another(self, journal: Store) -> None:
        now = time.time()
        async with self.instance(journal) as other:
            assert not await other.session_revoked("s-1", now=now)
            await journal.revoke_session("s-1", until=now + 3600)
            assert await other.session_revoked("s-1", now=now)
            assert not await other.session_revoked("s-2", now=now)
            await other.revoke_session("s-2", until=now + 3600)
            assert await journal.session_revoked("s-2", now=now)

    async def test_a_revocation_lasts_until_its_until_and_no_less(self, journal: Store) -> None:
        now = time.time()
        await journal.revoke_session("s-1", until=now + 60)
        await journal.revoke_session("s-1", until=now + 10)  # a second logout of a copy never shortens it
        assert await journal.session_revoked("s-1", now=now + 59)
        assert not await journal.session_revoked("s-1", now=now + 60)
        await journal.revoke_session("s-2", until=now - 1)  # expired already: nothing left to refuse
        assert not await journal.session_revoked("s-2", now=now)

    async def test_a_nonce_is_redeemed_once_on_any_instance(self, journal: Store) -> None:
        now = time.time()
        async with self.instance(journal) as other:
            assert await journal.redeem_once(LINK, "n-1", now=now, until=now + 900)
            assert not await other.redeem_once(LINK, "n-1", now=now + 1, until=now + 901)
            assert not await journal.redeem_once(LINK, "n-1", now=now + 2, until=now + 902)
            assert await other.redeem_once(LINK, "n-2", now=now, until=now + 900)
            assert await other.redeem_once("another-purpose", "n-1", now=now, until=now + 900)

    async def test_a_redeemed_nonce_is_forgotten_after_its_until(self, journal: Store) -> None:
        now = time.time()
        assert await journal.redeem_once(LINK, "n-1", now=now, until=now + 60)
        assert not await journal.redeem_once(LINK, "n-1", now=now + 59, until=now + 119)
        assert await journal.redeem_once(LINK, "n-1", now=now + 60, until=now + 120)
        assert not await journal.redeem_once(LINK, "n-1", now=now + 61, until=now + 121)

    async def test_instances_racing_to_redeem_one_nonce_let_one_win(self, journal: Store) -> None:
        now = time.time()
        async with self.instance(journal) as other:
            tries = [store.redeem_once(LINK, "n-1", now=now, until=now + 900) for store in (journal, other) * 5]
            assert sorted(await asyncio.gather(*tries)) == [False] * 9 + [True]
