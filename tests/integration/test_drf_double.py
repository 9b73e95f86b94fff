"""The DRF Face Studio double (tests/support) behaves like DRF, so later tests can rely on it.

Real gunicorn workers, DRF's own throttles and errors, counts in a real redis-server; time scaled
(periods divided by the scale) so windows last seconds. Each test is bounded (60 s, most take 1-3 s).
"""

from __future__ import annotations

import io
import json
import math
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

from aioface.providers.facestudio._adapter import TIERS
from aioface.testing import RedisServer
from tests.support.drf_server import DrfFaceStudio, count_429, get, max_in_window, status_counts

pytestmark = [pytest.mark.slow, pytest.mark.timeout(60)]

SCALE = 30.0  # Basic's 5/minute burst becomes 5 per 2 s
BURST = 60.0 / SCALE
ACCOUNTS = {
    "pro": {"user_class": "Professional", "keys": ["pro-1"]},
    "gamma": {"user_class": "Basic", "keys": ["gamma-1"]},
    "acme": {"user_class": "Basic", "keys": ["acme-1", "acme-2"]},
    "beta": {"user_class": "Basic", "keys": ["beta-1"]},
    "delta": {"user_class": "Basic", "keys": ["delta-1"]},
    "logco": {"user_class": "Basic", "keys": ["log-1", "log-2"]},
}


def throttled(n: int) -> dict[str, str]:
    """DRF's Throttled text (singular for one second)."""
    return {"detail": f"Request was throttled. Expected available in {n} second{'' if n == 1 else 's'}."}


@pytest.fixture(scope="module")
def drf_redis(module_redis: RedisServer | str) -> str:
    """The URL of the module's Redis (``conftest.module_redis``)."""
    return module_redis if isinstance(module_redis, str) else module_redis.url


@pytest.fixture(scope="module")
def studio(drf_redis: str) -> Iterator[DrfFaceStudio]:
    """One double for the quick tests; each test uses its own accounts."""
    with DrfFaceStudio(ACCOUNTS, redis_url=drf_redis, time_scale=SCALE) as fs:
        yield fs


# ------------------------------------------------------------------ no server
def test_rates_are_face_studios_tiers() -> None:
    from tests.support.drf_facestudio import settings

    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    for tier, rates in TIERS.items():
        got = []
        for window in ("burst", "sustained"):
            num, period = settings.DEFAULT_THROTTLE_RATES[f"{tier}_{window}"].split("/")
            got.append((int(num), float(seconds[period[0]])))
        assert got == [(r.limit, r.period) for r in rates], tier
    assert set(settings.USER_CLASSES) == set(TIERS)


def test_max_in_window_is_drfs_sliding_window() -> None:
    entries = [{"t": t, "account": "a", "status": 200} for t in (0.0, 0.4, 0.8, 1.0, 1.7)]
    entries.append({"t": 0.9, "account": "b", "status": 429})
    assert max_in_window(entries, 1.0, account="a") == 3  # 1.0 - 0.0 is not inside a 1 s window
    assert max_in_window(entries, 1.01, account="a") == 4
    assert max_in_window(entries, 1.0) == 4  # 0.4, 0.8, 0.9, 1.0
    assert max_in_window(entries, 1.0, status=429) == 1
    assert max_in_window([], 1.0) == 0
    assert status_counts(entries) == {200: 5, 429: 1}
    assert count_429(entries, account="a") == 0


# ------------------------------------------------------------------ (a) answers
def test_answers_an_image_with_the_user_class(studio: DrfFaceStudio) -> None:
    status, headers, body = get(studio.url, "pro-1")
    assert status == 200
    assert headers["Content-Type"] == "image/jpeg"
    assert headers["X-User-Class"] == "Professional"
    assert int(headers["Content-Length"]) == len(body)
    with Image.open(io.BytesIO(body)) as img:
        assert (img.format, img.size) == ("JPEG", (64, 64))

    status, headers, body = get(studio.url, "pro-1", image_format="webp")
    assert (status, headers["Content-Type"]) == (200, "image/webp")
    with Image.open(io.BytesIO(body)) as img:
        assert img.format == "WEBP"

    status, headers, body = get(studio.url, None)  # no Authorization: DRF's anonymous user
    assert (status, headers["X-User-Class"]) == (200, "Anon")

    status, headers, body = get(studio.url, "pro-1", image_format="png")  # DRF's own validation text
    assert (status, json.loads(body), headers["X-User-Class"]) == (
        400,
        {"image_format": ['"png" is not a valid choice.']},
        "Professional",
    )


def test_unknown_token_is_drfs_401(studio: DrfFaceStudio) -> None:
    status, headers, body = get(studio.url, "no-such-key")
    assert (status, json.loads(body), headers["WWW-Authenticate"]) == (401, {"detail": "Invalid token."}, "Token")
    assert "X-User-Class" not in headers
    status, _, body = get(studio.url, "two words")  # DRF TokenAuthentication's own header checks
    assert status == 401
    assert json.loads(body) == {"detail": "Invalid token header. Token string should not contain spaces."}


# ------------------------------------------------------------------ (b) throttling
def test_throttles_with_drfs_text_and_retry_after(studio: DrfFaceStudio) -> None:
    t0 = time.monotonic()
    assert [get(studio.url, "gamma-1")[0] for _ in range(5)] == [200] * 5  # Basic: 5 per burst window
    elapsed = time.monotonic() - t0
    status, headers, body = get(studio.url, "gamma-1")
    assert status == 429
    n = int(headers["Retry-After"])
    assert json.loads(body) == throttled(n)  # DRF: ceil(time left in the window / 1 request)
    if elapsed < 0.9:
        assert n == 2 == math.ceil(BURST)
    assert "X-User-Class" not in headers  # DRF answers before the view runs

    time.sleep(n + 0.05)  # as Retry-After says: the oldest request has left the window
    assert get(studio.url, "gamma-1")[0] == 200

    log = studio.read_log()
    assert status_counts(log, account="gamma") == {200: 6, 429: 1}
    assert max_in_window(log, BURST, account="gamma", status=200) == 5


def test_both_windows_are_checked_sustained_too() -> None:
    """Basic's sustained 120/day, scaled to 120 per 12 s (burst 5 per 8 ms, paced around): the 121st is
    throttled for the rest of the long window. LocMem, one worker: DRF allows floats there."""
    accounts = {"sus": {"user_class": "Basic", "keys": ["sus-1"]}}
    with DrfFaceStudio(accounts, time_scale=7200, workers=1) as fs:
        statuses = []
        t0 = time.monotonic()
        for _ in range(125):
            started = time.monotonic()
            status, headers, body = get(fs.url, "sus-1")
            statuses.append(status)
            if status != 200:
                break
            time.sleep(max(0.0, 0.005 - (time.monotonic() - started)))  # never 5 within 8.3 ms
        elapsed = time.monotonic() - t0
        assert statuses == [200] * 120 + [429]
        n = int(headers["Retry-After"])
        assert json.loads(body) == throttled(n)
        assert math.ceil(12 - elapsed) <= n <= 12  # the long window's wait, not the burst's (< 1 s)
        assert max_in_window(fs.read_log(), 12.0, status=200) == 120


# ------------------------------------------------------------------ (c) accounts
def test_keys_of_one_account_share_its_budget(studio: DrfFaceStudio) -> None:
    got = [get(studio.url, k)[0] for k in ("acme-1", "acme-1", "acme-1", "acme-2", "acme-2")]
    assert got == [200] * 5
    assert get(studio.url, "acme-2")[0] == 429  # its own first-but-one request: the account is spent
    assert get(studio.url, "acme-1")[0] == 429
    status, headers, _ = get(studio.url, "beta-1")  # another account, same class: its own budget
    assert (status, headers["X-User-Class"]) == (200, "Basic")

    log = studio.read_log()
    assert status_counts(log, account="acme") == {200: 5, 429: 2}
    assert status_counts(log, key="acme-2") == {200: 2, 429: 1}
    assert max_in_window(log, BURST, account="acme", status=200) == 5


def test_account_class_change_is_seen_without_restart(studio: DrfFaceStudio) -> None:
    assert get(studio.url, "delta-1")[1]["X-User-Class"] == "Basic"
    studio.set_accounts({**ACCOUNTS, "delta": {"user_class": "Enterprise", "keys": ["delta-1"]}})
    try:
        statuses = set()
        for _ in range(10):  # both workers re-read the table: every answer says Enterprise
            status, headers, _ = get(studio.url, "delta-1")
            statuses.add((status, headers.get("X-User-Class")))
        assert statuses == {(200, "Enterprise")}  # and 10 > Basic's 5: Enterprise's own scopes count
    finally:
        studio.set_accounts(ACCOUNTS)


# ------------------------------------------------------------------ (d) workers share counts
def staggered(url: str, keys: list[str], gap: float) -> list[int]:
    """One request per key, each started ``gap`` s after the previous, all in flight together."""
    statuses: dict[int, int] = {}

    def one(i: int, key: str) -> None:
        time.sleep(i * gap)
        statuses[i] = get(url, key, timeout=20)[0]

    threads = [threading.Thread(target=one, args=(i, k)) for i, k in enumerate(keys)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    return [statuses[i] for i in range(len(keys))]


def test_workers_share_counts_through_redis(drf_redis: str) -> None:
    """Slow answers keep a worker busy, so the next request goes to the other one; still 5 in all."""
    accounts = {"shared": {"user_class": "Basic", "keys": ["s-1", "s-2"]}}
    with DrfFaceStudio(accounts, redis_url=drf_redis, time_scale=10, latency=0.3) as fs:
        got = staggered(fs.url, ["s-1", "s-2"] * 4, gap=0.1)
        log = fs.read_log()
        assert Counter(got) == {200: 5, 429: 3}
        served = {e["pid"] for e in log if e["status"] == 200}
        assert served == fs.worker_pids() and len(served) == 2
        assert max_in_window(log, 6.0, account="shared", status=200) == 5


def test_without_redis_each_worker_counts_alone() -> None:
    """The contrast: LocMem is per process, so two workers let more than the budget through."""
    accounts = {"shared": {"user_class": "Basic", "keys": ["s-1", "s-2"]}}
    with DrfFaceStudio(accounts, redis_url=None, time_scale=10, latency=0.3) as fs:
        got = staggered(fs.url, ["s-1", "s-2"] * 4, gap=0.1)
        log = fs.read_log()
        assert len({e["pid"] for e in log if e["status"] == 200}) == 2
        assert got.count(200) > 5
        assert max_in_window(log, 6.0, account="shared", status=200) > 5


def test_redis_refuses_periods_it_would_truncate(drf_redis: str) -> None:
    """Django's RedisCache keeps whole seconds: a scale leaving 60/7 s periods would forget requests."""
    fs = DrfFaceStudio({}, redis_url=drf_redis, time_scale=7, startup_timeout=20)
    try:
        with pytest.raises(RuntimeError, match="whole number of seconds"):
            fs.start()
    finally:
        fs.close()


# ------------------------------------------------------------------ (e) the log
def test_log_records_every_request(studio: DrfFaceStudio) -> None:
    keys = ["log-1", "log-2", "log-1", "nope-log", "log-2", "log-1"] * 3
    t0 = time.time()
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda k: (k, get(studio.url, k)[0]), keys))
    t1 = time.time()
    log = [e for e in studio.read_log() if e["key"] in set(keys)]

    assert len(log) == len(keys)
    assert Counter((e["key"], e["status"]) for e in log) == Counter(results)
    assert Counter(e["account"] for e in log) == {"logco": 15, None: 3}
    assert {e["user_class"] for e in log if e["account"] == "logco"} == {"Basic"}
    assert all(t0 - 1 <= e["t"] <= e["t_end"] <= t1 + 1 for e in log)
    assert {e["pid"] for e in log} <= studio.worker_pids()
    assert count_429(log) == sum(1 for _, s in results if s == 429) > 0
    assert all(e["retry_after"] is not None for e in log if e["status"] == 429)
    # What the client sent in any window, from the server's clock; DRF admits >= 5 of it (not atomic).
    assert max_in_window(log, BURST, account="logco") <= 15
    assert max_in_window(log, BURST, account="logco", status=200) >= 5
