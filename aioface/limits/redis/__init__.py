"""Limits shared by processes and hosts through Redis (the ``redis`` extra; redis-py is imported on use)."""

from ._store import RedisStore as RedisStore

__all__ = ["RedisStore"]
