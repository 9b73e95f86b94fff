"""How long the windows in force need to grant n more requests (the CLI's time remaining counts it)."""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence

__all__ = ["grant_time"]


def grant_time(
    n: int,
    windows: Iterable[tuple[int, float, Sequence[float]]],
    *,
    now: float = 0.0,
    in_flight: int = 0,
    pause: float = 0.0,
) -> float:
    """Seconds from ``now`` until the last of ``n`` more requests can be granted.

    ``windows``: for each window its limit in force, its hold (period plus margin: how long a slot
    stays taken after an answer) and the times, ascending, at which its taken slots free up (those
    at or before ``now`` are free already). The ``in_flight`` requests hold a slot each until their
    answer (taken as now) plus the hold; a 429 ``pause`` holds everything. Each request is taken as
    answered the moment it is granted, so this is a lower bound: the time the limits alone impose,
    however fast the server.

    Request ``j`` needs ``taken + j - limit`` slots freed: the taken ones first (in the order they
    free up), then the new requests' own (request ``j - limit`` frees its slot a hold after its
    grant). So ``n`` at ``30/minute`` with a full window, spread evenly, is about ``2 * n`` seconds.
    O(log taken) a window: nothing is copied.
    """
    worst = max(0.0, pause)
    if n <= 0:
        return worst
    for limit, hold, frees in windows:
        limit = max(1, limit)
        start = bisect.bisect_right(frees, now)  # the slots freed already
        pending = len(frees) - start
        rounds = math.ceil(n / limit) - 1  # times the last request waits on one of the new requests
        j = n - rounds * limit  # 1..limit: its ancestor among the first `limit` new requests
        need = pending + in_flight + j - limit
        if need <= 0:
            first = 0.0
        elif need <= pending:
            first = frees[start + need - 1] - now
        else:
            first = hold  # an answer still to come
        worst = max(worst, first + rounds * hold)
    return worst
