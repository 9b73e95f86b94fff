"""What a client shares with its providers and views: the dispatcher while open, the limits store."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ._config import persisted
from ._dispatch import Dispatch, Endpoint, generic_error
from ._errors import ClientClosedError, ConfigurationError
from .limits import Limiter, LimitsStore, LocalStore, Rate, RateLimiter
from .limits._rate import account_digest, key_digest


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

    def __init__(
        self,
        *,
        store: LimitsStore,
        time_scale: float,
        margin: float,
        stamp_bound: float | None,
        accounts: Mapping[str, str] | None = None,
    ) -> None:
        self.store = store
        #: Per provider, the account label its key belongs to (keys of one account share limits).
        self._accounts = {p: account_digest(label) for p, label in (accounts or {}).items()}
        #: A view's own limiters, one per (provider, budget, rates), kept for every view to share.
        self._view_limiters: dict[tuple[str, str, tuple[Rate, ...]], Limiter] = {}
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

    def budget_id(self, provider: str, key: str | None) -> str:
        """The hashed name the limits of (provider, key) are kept under: its account's, if it has one."""
        return self._accounts.get(provider) or key_digest(key)

    def has_account(self, provider: str) -> bool:
        """Whether ``provider``'s key was given an account (its limits are the account's)."""
        return provider in self._accounts

    def make_limiter(self, provider: str, key: str | None, rates: tuple[Rate, ...], adaptive: bool) -> Limiter:
        return self.store.limiter(
            provider,
            self.budget_id(provider, key),
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
        return self.store.load_meta(provider, self.budget_id(provider, key))

    def save_meta(self, provider: str, key: str | None, values: Mapping[str, str]) -> None:
        """Keep ``values`` for the next client using (provider, key) (locally: nothing without a state_dir)."""
        if self.has_account(provider):  # shown as an account by ``aioface limits`` (never its label)
            values = {**values, "kind": "account"}
        self.store.save_meta(provider, self.budget_id(provider, key), values)

    def view_limiter(self, provider: str, key: str | None, rates: tuple[Rate, ...]) -> Limiter:
        """A view's own limits (``with_options(limits=...)``): one limiter per (provider, key or
        account, rates), made once and kept, so that every view asking for them shares it; kept
        in the store in use (Redis: shared by processes) and persisted like the client's."""
        budget = self.budget_id(provider, key)
        spec = tuple(sorted(rates, key=lambda r: (r.period, r.limit)))
        found = self._view_limiters.get((provider, budget, spec))
        if found is None:
            label = ",".join(r.label() for r in spec)
            view_hash = key_digest(f"{budget}|view|{label}")
            found = self.store.limiter(
                provider,
                view_hash,
                [r.scaled(self.time_scale) for r in spec],
                margin=self.margin,
                adaptive=False,
                stamp_bound=self.stamp_bound,
                persist=persisted(spec),
            )
            self._view_limiters[(provider, budget, spec)] = found
        return found


__all__ = ["ClientHub", "open_store"]
