"""The budget view (``aioface limits``): what the persisted limiter state says, per provider and key.

Reads the files the limiter keeps in ``<state dir>/limits/`` (send times of windows of an hour or
more, and the tier last learned) without changing them; :func:`reset` removes one key's files.
With a Redis limits store, :func:`redis_views` reads every window, the requests in flight and a
429 pause from Redis instead (:func:`redis_reset` forgets a key there). Keys only ever appear
hashed, as in the file names and the Redis keys.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .. import _config, _json
from .._config import PERSIST_MIN_PERIOD
from ..limits import Rate, parse_limits
from ..limits._persist import budget_path
from ..limits._rate import account_digest
from ..providers import providers

if TYPE_CHECKING:
    from ..limits import RedisStore

#: Windows shorter than this live in memory only (the client persists the long ones).
PERSISTED_FROM = PERSIST_MIN_PERIOD
_NAME = re.compile(r"^(?P<provider>[a-z][a-z0-9_]*)-(?P<digest>[0-9a-f]{16})\.log$")


@dataclass(frozen=True)
class WindowUse:
    """One window of a key's limits: how much of it the persisted sends use."""

    rate: Rate
    #: Sends inside the window now; None for a window too short to be persisted.
    used: int | None
    #: Seconds until a slot frees (0: one is free now); None when not persisted.
    next_free_in: float | None


@dataclass(frozen=True)
class BudgetView:
    """One (provider, key) as the persisted state shows it."""

    provider: str
    key_hash: str
    tier: str | None
    #: Where the limits come from: ``env`` (AIOFACE_<P>_LIMITS), ``tier`` or ``default``.
    limits_from: str
    windows: tuple[WindowUse, ...]
    last_send: float | None
    #: The local budget file; None for state kept in Redis.
    path: Path | None
    #: True when this is the key the environment names for the provider.
    current: bool = False
    #: Seconds left of a pause after a 429 (known with Redis only).
    paused_for: float = 0.0
    #: Requests sent and not yet answered (known with Redis only).
    in_flight: int = 0
    #: True when the state is an account's (``AIOFACE_<P>_ACCOUNT``): every key of it shares it.
    account: bool = False

    def to_json(self) -> dict[str, object]:
        return {
            "provider": self.provider,
            "key": self.key_hash,
            "current": self.current,
            "account": self.account,
            "tier": self.tier,
            "limits_from": self.limits_from,
            "last_send": self.last_send,
            "in_flight": self.in_flight,
            "paused_for": self.paused_for,
            "windows": [
                {"rate": str(w.rate), "limit": w.rate.limit, "period": w.rate.period, "used": w.used,
                 "next_free_in": w.next_free_in}
                for w in self.windows
            ],
        }  # fmt: skip


def default_state_dir(env: Mapping[str, str] | None = None) -> Path:
    """The folder the client persists limits in by default (``AIOFACE_CACHE_DIR`` or the user cache)."""
    return _config.default_state_dir(os.environ if env is None else env)


def _stamps(path: Path) -> list[float]:
    try:
        raw = path.read_bytes()
    except OSError:
        return []
    out: list[float] = []
    for line in raw.split(b"\n"):
        with contextlib.suppress(ValueError):
            out.append(float(line))
    return sorted(out)


def _facts(path: Path) -> dict[str, object]:
    try:
        data = _json.loads(path.with_name(path.name + ".tier").read_bytes())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _tier(path: Path) -> str | None:
    tier = _facts(path).get("tier")
    return tier if isinstance(tier, str) and tier else None


def window_use(rate: Rate, stamps: list[float], now: float) -> WindowUse:
    """Use of ``rate`` by sorted send ``stamps`` at ``now`` (wall clock)."""
    if rate.period < PERSISTED_FROM:
        return WindowUse(rate, None, None)
    inside = [t for t in stamps if now - rate.period < t <= now]
    if len(inside) < rate.limit:
        return WindowUse(rate, len(inside), 0.0)
    # A slot frees when enough of the oldest sends leave the window.
    frees_at = inside[len(inside) - rate.limit] + rate.period
    return WindowUse(rate, len(inside), max(0.0, frees_at - now))


def current_hashes(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """provider -> the hash of the key the environment gives it (as in the file names)."""
    env = os.environ if env is None else env
    out: dict[str, str] = {}
    for name, spec in providers().items():
        key = env.get(spec.key_env, "").strip() or None
        out[name] = budget_path(Path("."), name, key).name[len(name) + 1 : -len(".log")]
        account = env.get(_config.provider_env(name, _config.ACCOUNT), "").strip()
        if account:  # the key's limits are its account's
            out[name] = account_digest(account)
    return out


def views(state_dir: Path, *, env: Mapping[str, str] | None = None, now: float | None = None) -> list[BudgetView]:
    """Every (provider, key) with persisted state in ``state_dir``, sorted by provider then key."""
    env = os.environ if env is None else env
    now = time.time() if now is None else now
    folder = state_dir / "limits"
    specs = providers()
    mine = current_hashes(env)
    out: list[BudgetView] = []
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    for fname in names:
        m = _NAME.match(fname)
        if m is None or m["provider"] not in specs:
            continue
        provider, digest = m["provider"], m["digest"]
        path = folder / fname
        tier = _tier(path)
        rates, source = _rates(provider, env, tier, current=mine[provider] == digest)
        stamps = _stamps(path)
        windows = tuple(window_use(r, stamps, now) for r in rates)
        account = _facts(path).get("kind") == "account"
        out.append(
            BudgetView(
                provider,
                digest,
                tier,
                source,
                windows,
                stamps[-1] if stamps else None,
                path,
                mine[provider] == digest,
                account=account,
            )
        )
    return out


def _rates(provider: str, env: Mapping[str, str], tier: str | None, *, current: bool) -> tuple[tuple[Rate, ...], str]:
    """The limits a client would hold (provider, key) to, and where they come from."""
    spec = providers()[provider]
    explicit = env.get(f"{spec.env_prefix}LIMITS")
    if explicit:
        return parse_limits(explicit), "env"
    if tier is not None and tier.lower() in spec.tiers:
        return spec.tiers[tier.lower()], "tier"
    if current:  # the environment's key: the limits a client would start with
        return _client_rates(provider, env), "client"
    return parse_limits(spec.default_limits), "default"


def shared_window_use(rate: Rate, ages: Sequence[float], in_flight: int) -> WindowUse:
    """Use of ``rate`` by sends ``ages`` seconds old (oldest first) plus ``in_flight`` unanswered ones,
    each of which holds a slot until a window after its answer (next slot unknown: None)."""
    inside = [a for a in ages if a < rate.period]
    used = len(inside) + in_flight
    if used < rate.limit:
        return WindowUse(rate, used, 0.0)
    leave = used - rate.limit + 1  # how many must leave the window, oldest first
    if leave > len(inside):
        return WindowUse(rate, used, None)
    return WindowUse(rate, used, max(0.0, rate.period - inside[leave - 1]))


async def redis_views(store: RedisStore, *, env: Mapping[str, str] | None = None) -> list[BudgetView]:
    """Every (provider, key) the Redis limits store holds, every window of it (all are shared)."""
    env = os.environ if env is None else env
    specs = providers()
    mine = current_hashes(env)
    out: list[BudgetView] = []
    wall = time.time()
    for st in await store.states():
        if st.provider not in specs:
            continue
        tier = st.meta.get("tier") or None
        rates, source = _rates(st.provider, env, tier, current=mine[st.provider] == st.key_hash)
        windows = tuple(shared_window_use(r, st.ages, st.in_flight) for r in rates)
        last = wall - st.ages[-1] if st.ages else None
        out.append(
            BudgetView(
                st.provider,
                st.key_hash,
                tier,
                source,
                windows,
                last,
                None,
                mine[st.provider] == st.key_hash,
                st.paused_for,
                st.in_flight,
                st.meta.get("kind") == "account",
            )
        )
    return out


async def redis_reset(store: RedisStore, view: BudgetView) -> int:
    """Forget (provider, key) in Redis (every window, the pause, the learned tier); keys removed."""
    return await store.forget(view.provider, view.key_hash)


def _client_rates(provider: str, env: Mapping[str, str]) -> tuple[Rate, ...]:
    """The limits a client made from ``env`` starts ``provider`` with (no I/O: nothing is sent)."""
    from .._client import Client

    return Client(env=env, persist_limits=False).limiter(provider).rates


def reset(view: BudgetView) -> list[Path]:
    """Remove one key's persisted state (send times and learned tier); the files removed."""
    removed: list[Path] = []
    if view.path is None:
        return removed
    for p in (view.path, view.path.with_name(view.path.name + ".tier")):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
            removed.append(p)
    return removed


__all__ = [
    "BudgetView",
    "WindowUse",
    "current_hashes",
    "default_state_dir",
    "redis_reset",
    "redis_views",
    "reset",
    "shared_window_use",
    "views",
    "window_use",
]
