"""Emulator configuration, shared state and the fault plan."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from ._durations import Durations

#: Fault kinds the emulator can inject.
FAULT_KINDS = ("500", "502", "503", "504", "429", "403", "reset", "truncate", "bad_json", "stall", "stall_body")


@dataclass
class Faults:
    """Failures to inject, per provider (``facestudio``, ``acedata``, ``ailab``, ``files``).

    ``rates[provider][kind]`` is a probability per request; ``schedule[provider]`` lists the kind
    (or None) for the provider's 1st, 2nd, ... request, deterministically, before rates apply.
    Task faults: ``task_fail`` (task ends failed), ``task_stuck`` (never finishes),
    ``callback_lost`` (no callback), ``callback_twice`` (sent twice), ``result_missing`` (URL 404s).
    """

    rates: dict[str, dict[str, float]] = field(default_factory=dict)
    schedule: dict[str, list[str | None]] = field(default_factory=dict)
    task_fail: float = 0.0
    task_stuck: float = 0.0
    callback_lost: float = 0.0
    callback_twice: float = 0.0
    result_missing: float = 0.0
    stall_seconds: float = 30.0

    def __post_init__(self) -> None:
        for prov, kinds in self.rates.items():
            for kind in kinds:
                if kind not in FAULT_KINDS:
                    raise ValueError(f"unknown fault kind {kind!r} for {prov}; known: {', '.join(FAULT_KINDS)}")
        for prov, sched in self.schedule.items():
            for k in sched:
                if k is not None and k not in FAULT_KINDS:
                    raise ValueError(f"unknown fault kind {k!r} in the {prov} schedule")

    @classmethod
    def mixed(
        cls,
        rate: float,
        providers: tuple[str, ...] = ("facestudio", "acedata", "ailab", "files"),
        *,
        stalls: bool = False,
        stall_seconds: float = 30.0,
    ) -> Faults:
        """``rate`` of requests fail, spread evenly over 5xx, 429, resets, cut bodies and bad JSON
        (and, with ``stalls``, answers or bodies that stall for ``stall_seconds``)."""
        kinds: tuple[str, ...] = ("500", "502", "503", "504", "429", "reset", "truncate", "bad_json")
        if stalls:
            kinds += ("stall", "stall_body")
        per = rate / len(kinds)
        return cls(rates={p: dict.fromkeys(kinds, per) for p in providers}, stall_seconds=stall_seconds)


@dataclass
class EmulatorConfig:
    """How the emulator behaves. The defaults accept any non-empty key (and anonymous Face Studio)."""

    #: Only keys listed in ``keys`` are valid (any provider).
    strict: bool = False
    #: Face Studio key -> tier (anon/basic/professional/enterprise); also the valid keys when strict.
    keys: dict[str, str] = field(default_factory=dict)
    #: Tier of a valid key that ``keys`` does not name.
    default_tier: str = "basic"
    #: Limits run this many times faster (60: a Face Studio "minute" lasts one second).
    time_scale: float = 1.0
    #: Seconds added to every answer, plus a uniform random part up to ``latency_jitter``.
    latency: float = 0.0
    latency_jitter: float = 0.0
    #: Seconds an async task (AILab, Ace callback swap) takes; plus up to ``task_jitter``.
    task_duration: float = 0.3
    task_jitter: float = 0.0
    #: Instead: durations drawn from a distribution, e.g. ``"lognormal:5:1/10"`` (see ``_durations``).
    task_distribution: str | None = None
    #: Seconds a synchronous Ace swap takes.
    swap_duration: float = 0.05
    #: Bytes of padding after every result image served from /files (big-download tests).
    result_padding: int = 0
    #: Seconds a result URL lives (AILab documents 24 hours); scaled by ``time_scale``.
    result_ttl: float = 86400.0
    #: AILab credits; None is unlimited. Each accepted task costs one.
    ailab_credits: int | None = None
    #: Rate limits for Ace Data and AILab as ((limit, period), ...); None is unlimited.
    acedata_limits: tuple[tuple[int, float], ...] | None = None
    ailab_limits: tuple[tuple[int, float], ...] | None = None
    faults: Faults = field(default_factory=Faults)
    seed: int | None = None

    def __post_init__(self) -> None:
        tiers = ("anon", "basic", "professional", "enterprise")  # Face Studio's, for keys and default_tier
        for key, tier in {**self.keys, "default_tier": self.default_tier}.items():
            if tier not in tiers:
                raise ValueError(f"tier of {key!r} must be one of {', '.join(tiers)}, got {tier!r}")
        if self.task_distribution is not None:
            Durations.parse(self.task_distribution)


@dataclass
class Task:
    created: float
    duration: float
    fail: bool
    stuck: bool
    result: str | None = None
    #: Ace Data: the seed of the image, and the final answer once retrieved.
    seed: int = 0
    answer: dict[str, Any] | None = None
    #: Ace Data: the swap's request body, shown in its task record; when it was made (wall clock).
    request: dict[str, Any] | None = None
    wall: float = field(default_factory=time.time)


@dataclass
class FileEntry:
    seed: int
    age: int
    size: int
    fmt: str
    expires: float
    missing: bool = False
    #: An uploaded file's own bytes (Ace Data's platform upload), served as they came.
    data: bytes | None = None
    content_type: str = ""


class State:
    """Everything the emulator remembers; one per app."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.stats: Counter[str] = Counter()
        self.history: dict[tuple[str, str, float], deque[float]] = {}
        self.tasks: dict[str, Task] = {}
        self.files: dict[str, FileEntry] = {}
        self.route_counts: Counter[str] = Counter()
        self.background: set[asyncio.Task[None]] = set()
        self.ailab_credits = config.ailab_credits
        spec = config.task_distribution
        self.durations = Durations.parse(spec) if spec is not None else None

    def task_duration(self) -> float:
        """Seconds the next async task takes."""
        if self.durations is not None:
            return self.durations.draw(self.rng)
        c = self.config
        return c.task_duration + self.rng.uniform(0, c.task_jitter)

    def now(self) -> float:
        return time.monotonic()

    async def latency(self) -> None:
        c = self.config
        delay = c.latency + (self.rng.uniform(0, c.latency_jitter) if c.latency_jitter else 0.0)
        if delay > 0:
            await asyncio.sleep(delay)

    def throttle(self, scope: str, ident: str, limits: tuple[tuple[int, float], ...]) -> float | None:
        """DRF's SimpleRateThrottle, one per window: None if allowed, else seconds to wait.

        Like DRF's ``check_throttles``, a window that allows records the request even when
        another window refuses it.
        """
        now = self.now()
        waits: list[float] = []
        for limit, period in limits:
            period = period / self.config.time_scale
            hist = self.history.setdefault((scope, ident, period), deque())
            while hist and hist[-1] <= now - period:
                hist.pop()
            if len(hist) >= limit:
                remaining = period - (now - hist[-1]) if hist else period
                waits.append(remaining / max(1, limit - len(hist) + 1))
            else:
                hist.appendleft(now)
        if waits:
            self.stats[f"{scope}_429"] += 1
            self.stats["throttled"] += 1
            return max(waits)
        return None

    def new_file(self, seed: int, age: int, size: int, fmt: str) -> str:
        name = f"{uuid.uuid4()}.{'jpg' if fmt == 'jpeg' else fmt}"
        missing = self.rng.random() < self.config.faults.result_missing
        ttl = self.config.result_ttl / self.config.time_scale
        self.files[name] = FileEntry(seed, age, size, fmt, self.now() + ttl, missing)
        return name

    def add_upload(self, data: bytes, filename: str, content_type: str) -> str:
        """Keep an uploaded file; its name under ``/files/``."""
        ext = filename.rsplit(".", 1)[-1] if "." in filename else "bin"
        name = f"{uuid.uuid4()}.{ext}"
        ttl = self.config.result_ttl / self.config.time_scale
        self.files[name] = FileEntry(0, 0, 0, "", self.now() + ttl, data=data, content_type=content_type)
        return name

    def pick_fault(self, provider: str) -> str | None:
        f = self.config.faults
        n = self.route_counts[provider]
        self.route_counts[provider] += 1
        sched = f.schedule.get(provider)
        if sched is not None and n < len(sched):
            return sched[n]
        for kind, p in f.rates.get(provider, {}).items():
            if p > 0 and self.rng.random() < p:
                return kind
        return None

    def spawn(self, coro: object) -> None:
        t = asyncio.ensure_future(coro)  # type: ignore[call-overload]
        self.background.add(t)
        t.add_done_callback(self.background.discard)
