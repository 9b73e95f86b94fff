from __future__ import annotations

import email.utils
import random

import pytest

from aioface import (
    APIError,
    ConnectError,
    ProtocolError,
    QuotaExceededError,
    RateLimitError,
    RetryPolicy,
    ServerError,
)
from aioface._retry import backoff, is_retryable, parse_retry_after, retry_delay
from aioface.providers.facestudio._adapter import parse_throttle_detail


def _api(cls: type[APIError], status: int, retry_after: float | None = None) -> Exception:
    return cls("x", provider="p", status=status, code="c", retry_after=retry_after)


def test_retry_after_seconds_date_and_ms() -> None:
    now = 1_700_000_000.0
    assert parse_retry_after({"Retry-After": "7"}, now) == 7.0
    assert parse_retry_after({"retry-after-ms": "1500"}, now) == 1.5
    date = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after({"Retry-After": date}, now) == pytest.approx(30.0, abs=1.0)
    assert parse_retry_after({"Retry-After": "soon"}, now) is None
    assert parse_retry_after({}, now) is None


def test_throttle_detail_plural_and_singular() -> None:
    assert parse_throttle_detail("Request was throttled. Expected available in 25 seconds.") == 25.0
    assert parse_throttle_detail("Request was throttled. Expected available in 1 second.") == 1.0
    assert parse_throttle_detail("Invalid token.") is None


@pytest.mark.parametrize(
    ("exc", "idempotent", "expected"),
    [
        (ConnectError("no route"), False, True),  # never reached the server
        (ProtocolError("cut"), True, True),  # GET may be repeated
        (ProtocolError("cut"), False, False),  # a POST may have been processed
        (_api(ServerError, 503), True, True),
        (_api(ServerError, 500), False, False),
        (_api(RateLimitError, 429), False, True),  # 429 proves it was not processed
        (_api(QuotaExceededError, 429), True, False),  # out of credit: waiting won't help
        (_api(ServerError, 501), True, False),
    ],
)
def test_is_retryable(exc: Exception, idempotent: bool, expected: bool) -> None:
    assert is_retryable(exc, idempotent=idempotent) is expected


def test_backoff_grows_is_capped_and_jittered() -> None:
    policy = RetryPolicy(base=0.5, cap=8.0)
    rng = random.Random(3)
    waits = [backoff(n, policy, rng) for n in range(8)]
    for n, w in enumerate(waits):
        full = min(8.0, 0.5 * 2**n)
        assert 0.75 * full <= w <= full
    assert waits[-1] <= 8.0


def test_retry_delay_honours_hint_up_to_max_wait() -> None:
    policy = RetryPolicy(max_wait=60)
    assert retry_delay(_api(RateLimitError, 429, 25.0), 0, policy) == 25.0
    assert retry_delay(_api(RateLimitError, 429, 86_000.0), 0, policy) is None
    assert 0 < retry_delay(ConnectError("x"), 0, policy) <= 0.5  # type: ignore[operator]


def test_percentiles() -> None:
    from aioface.jobs._bench import percentiles

    p = percentiles([float(x) for x in range(1, 101)])
    assert (p["p50"], p["p90"], p["p99"], p["max"]) == (51.0, 90.0, 99.0, 100.0)
    assert p["mean"] == 50.5
    assert percentiles([])["p99"] == 0.0
