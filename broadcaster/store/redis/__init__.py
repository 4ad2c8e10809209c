"""The Redis journal backend (redis:// and rediss:// store URLs)."""

from broadcaster.store.redis.journal import RedisStore

__all__ = ["RedisStore"]
