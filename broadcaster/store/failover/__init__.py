"""A shared journal with a local replica to go on from when it is out of reach (store.py)."""

from broadcaster.store.failover.replica import read_standings
from broadcaster.store.failover.store import FailoverStore

__all__ = ["FailoverStore", "read_standings"]
