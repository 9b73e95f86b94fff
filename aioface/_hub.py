"""What a client shares with its providers and views: the dispatcher while open, the limits store."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ._config import persisted
from ._dispatch import Dispatch, Endpoint, generic_error
from ._errors import ClientClosedError, ConfigurationError
from .limits import Limiter, LimitsStore, LocalStore, Rate, RateLimiter
from .limits._rate import key_digest


def open_store(spec: LimitsStore | str | None, *, state_dir: Path | None = None) -> LimitsStore:
    """A store from an object, ``"local"``/empty, or a ``redis://``/``rediss://``/``unix://`` URL."""
    if spec is not None and not isinstance(spec, str):
        return spec
    url = (spec or "").strip()
    if url in ("", "local"):
        return LocalStore(state_dir)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from .limits.redis._store import RedisStore  # the redis extra, imported only when asked for

        return RedisStore(url)
    # Never echo the value itself: 'user:password@host' without a scheme would show the password.
    scheme = url.split("://")[0] + "://..." if "://" in url else "(no scheme)"
    raise ConfigurationError(f"unknown limits store {scheme!r}: use 'local' or a redis:// URL")


class ClientHub:
    """What the client shares with its providers: the dispatcher and how limiters are made."""

    def __init__(self, *, store: LimitsStore, time_scale: float, margin: float, stamp_bound: float | None) -> None:
        self.store = store
        self.time_scale = time_scale
        self.margin = margin
        self.stamp_bound = stamp_bound
        #: Set while the client is open.
        self.current: Dispatch | None = None
        #: True once the client was closed (a later use says so).
        self.was_closed = False
        self._download: Endpoint | None = None

    @property
    def dispatch(self) -> Dispatch:
        if self.current is None:
            if self.was_closed:
                raise ClientClosedError("this Client (or a view of it) is closed: make a new one to go on")
            raise ClientClosedError("use the Client inside 'async with' (or await client.open())")
        return self.current

    @property
    def download_endpoint(self) -> Endpoint:
        if self._download is None:
            limiter = RateLimiter([Rate(1_000_000, 1.0)], margin=0.0)
            self._download = Endpoint("download", limiter, generic_error)
        return self._download

    def make_limiter(self, provider: str, key: str | None, rates: tuple[Rate, ...], adaptive: bool) -> Limiter:
        return self.store.limiter(
            provider,
            key_digest(key),
            [r.scaled(self.time_scale) for r in rates],
            margin=self.margin,
            adaptive=adaptive,
            stamp_bound=self.stamp_bound,
            persist=persisted(rates),
        )

    # What was learned about a (provider, key): kept by the limits store (beside the budget file
    # locally, in Redis when limits are shared), per provider and hashed key.
    def load_meta(self, provider: str, key: str | None) -> dict[str, str]:
        """Small facts an earlier client learned about (provider, key), e.g. its tier; {} if none."""
        return self.store.load_meta(provider, key_digest(key))

    def save_meta(self, provider: str, key: str | None, values: Mapping[str, str]) -> None:
        """Keep ``values`` for the next client using (provider, key) (locally: nothing without a state_dir)."""
        self.store.save_meta(provider, key_digest(key), values)


__all__ = ["ClientHub", "open_store"]
