"""Task-duration distributions for the emulator (and the polling benchmark), from a short spec.

``uniform:LO:HI``, ``lognormal:MEAN:SD`` (of the duration itself, not of its log),
``bimodal:A:B[:P_B]`` (two lognormal modes with a 10% spread, ``P_B`` of tasks near ``B``, default 0.3),
``pareto:XM:ALPHA[:CAP]`` (heavy tail from ``XM``, capped at ``CAP``, default 240 s),
``fixed:SECONDS``. A ``/K`` suffix divides every duration by ``K`` (``lognormal:5:1/10``).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Durations:
    """A parsed spec; ``draw(rng)`` gives one duration in seconds."""

    kind: str
    params: tuple[float, ...]
    scale: float = 1.0

    @classmethod
    def parse(cls, spec: str) -> Durations:
        body, _, div = spec.strip().partition("/")
        kind, *rest = body.split(":")
        try:
            params = tuple(float(p) for p in rest)
            scale = float(div) if div else 1.0
        except ValueError:
            raise ValueError(f"bad task-duration spec {spec!r}: parameters must be numbers") from None
        need = {"fixed": (1, 1), "uniform": (2, 2), "lognormal": (2, 2), "bimodal": (2, 3), "pareto": (2, 3)}
        if kind not in need:
            raise ValueError(f"unknown task-duration distribution {kind!r}; known: {', '.join(need)}")
        lo, hi = need[kind]
        if not lo <= len(params) <= hi or any(p < 0 for p in params) or scale <= 0:
            raise ValueError(f"bad task-duration spec {spec!r}: see `aioface emulator --help`")
        if kind == "bimodal" and len(params) == 2:
            params = (*params, 0.3)
        if kind == "pareto" and len(params) == 2:
            params = (*params, 240.0)
        return cls(kind, params, scale)

    def __str__(self) -> str:
        p = ":".join(f"{x:g}" for x in self.params)
        return f"{self.kind}:{p}" + (f"/{self.scale:g}" if self.scale != 1 else "")

    def draw(self, rng: random.Random) -> float:
        k, p = self.kind, self.params
        if k == "fixed":
            d = p[0]
        elif k == "uniform":
            d = rng.uniform(p[0], p[1])
        elif k == "lognormal":
            d = _lognormal(rng, p[0], p[1])
        elif k == "bimodal":
            m = p[1] if rng.random() < p[2] else p[0]
            d = _lognormal(rng, m, 0.1 * m)
        else:  # pareto
            d = min(p[2], p[0] * rng.paretovariate(p[1]))
        return d / self.scale

    def mean(self) -> float:
        """The distribution's mean (a cap ignored for Pareto), for sizing runs."""
        k, p = self.kind, self.params
        if k == "fixed":
            m = p[0]
        elif k == "uniform":
            m = (p[0] + p[1]) / 2
        elif k == "lognormal":
            m = p[0]
        elif k == "bimodal":
            m = p[0] * (1 - p[2]) + p[1] * p[2]
        else:
            m = p[0] * p[1] / (p[1] - 1) if p[1] > 1 else p[2]
        return m / self.scale


def _lognormal(rng: random.Random, mean: float, sd: float) -> float:
    if sd <= 0:
        return mean
    s2 = math.log(1 + (sd / mean) ** 2)
    return rng.lognormvariate(math.log(mean) - s2 / 2, math.sqrt(s2))
