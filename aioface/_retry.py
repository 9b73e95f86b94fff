"""Pure retry maths: what to retry, how long to wait. Nothing here sleeps."""

from __future__ import annotations

import email.utils
import random
from collections.abc import Mapping
from dataclasses import dataclass

from ._errors import (
    APIError,
    ConfigurationError,
    ConnectError,
    QuotaExceededError,
    RateLimitError,
    TransportError,
)

#: Statuses that are worth another try (when the method allows it).
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
#: Statuses that prove the request was not processed, so even a POST may be sent again.
NOT_PROCESSED_STATUSES = frozenset({408, 429})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long aioface retries a failed request.

    ``max_wait`` caps any single wait, including a provider's ``Retry-After``: a hint longer than
    that (a daily budget spent, say) is raised to the caller instead of slept through.
    """

    max_retries: int = 4
    base: float = 0.5
    cap: float = 8.0
    max_wait: float = 90.0

    def __post_init__(self) -> None:
        values = (self.max_retries, self.base, self.cap, self.max_wait)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in values):
            raise ConfigurationError(f"RetryPolicy values must be numbers >= 0, got {values!r}")


def backoff(attempt: int, policy: RetryPolicy, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter: ``min(cap, base * 2**attempt) * (1 - 0.25 * U[0,1))``."""
    r = (rng or random).random()
    return float(min(policy.cap, policy.base * 2**attempt) * (1 - 0.25 * r))


def parse_retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds to wait from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date).

    ``now`` is the wall-clock time (``time.time()``) used for HTTP dates.
    """
    ms = headers.get("retry-after-ms") or headers.get("Retry-After-Ms")
    if ms:
        try:
            return max(0.0, float(ms) / 1000.0)
        except ValueError:
            pass
    value = headers.get("Retry-After") or headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - now)


def is_retryable(exc: BaseException, *, idempotent: bool) -> bool:
    """Whether ``exc`` is worth another try.

    A request that is not idempotent (a POST that starts paid work) is retried only when the
    failure proves it was not processed: no connection was made, or the provider said 408/429.
    """
    if isinstance(exc, QuotaExceededError):
        return False
    if isinstance(exc, ConnectError):
        return True
    if isinstance(exc, APIError):
        if exc.status not in RETRY_STATUSES:
            return False
        return idempotent or exc.status in NOT_PROCESSED_STATUSES or isinstance(exc, RateLimitError)
    if isinstance(exc, TransportError):
        return idempotent or not exc.sent
    return False


def retry_delay(
    exc: BaseException, attempt: int, policy: RetryPolicy, rng: random.Random | None = None
) -> float | None:
    """Seconds to wait before retry ``attempt`` (0-based), or None when the hint is past ``max_wait``."""
    hint = exc.retry_after if isinstance(exc, APIError) else None
    if hint is not None:
        return hint if hint <= policy.max_wait else None
    return min(backoff(attempt, policy, rng), policy.max_wait)
