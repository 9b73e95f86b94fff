"""Start and stop the DRF Face Studio double (``tests/support/drf_facestudio``), and read its request log.

    with DrfFaceStudio({"acme": {"user_class": "Basic", "keys": ["k1", "k2"]}},
                       redis_url=redis_url, time_scale=30) as fs:
        urllib.request.urlopen(urllib.request.Request(fs.url + "/v1/generate",
                                                      headers={"Authorization": "Token k1"}))
        entries = fs.read_log()
        assert max_in_window(entries, 60 / 30, account="acme", status=200) <= 5

gunicorn serves it on 127.0.0.1 with ``workers`` processes; throttle counts live in Redis when
``redis_url`` is given (shared by the workers), else in each worker's LocMem cache. Every process
started here is stopped by PID.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import psutil

from aioface._net import free_port

ROOT = Path(__file__).resolve().parents[2]
#: urllib without the environment's proxies: the double is on loopback.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
Accounts = Mapping[str, Mapping[str, Any]]  # {"acme": {"user_class": "Basic", "keys": ["k1", "k2"]}}


def write_accounts(path: Path, accounts: Accounts) -> None:
    """Replace the account table file at once (the workers re-read it on their next request)."""
    tmp = path.with_name(path.name + f".{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(json.dumps(accounts), encoding="utf-8")
    os.replace(tmp, path)


def get(url: str, key: str | None = None, *, timeout: float = 10.0, **params: str) -> tuple[int, dict[str, str], bytes]:
    """``GET url/v1/generate?params`` with ``Authorization: Token key`` (none if key is None):
    (status, headers, body), for errors too."""
    query = "?" + urllib.parse.urlencode(params) if params else ""
    headers = {"Authorization": f"Token {key}"} if key is not None else {}
    req = urllib.request.Request(url.rstrip("/") + "/v1/generate" + query, headers=headers)
    try:
        with OPENER.open(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, dict(e.headers), e.read()


def read_log(path: Path | str, event: str = "request") -> list[dict[str, Any]]:
    """The log's entries of ``event`` ("request" or "boot"), in file order."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    entries = [json.loads(line) for line in lines if line.strip()]
    return [e for e in entries if e.get("event") == event]


def _select(
    entries: Iterable[Mapping[str, Any]], account: str | None, key: str | None, status: int | None
) -> list[Mapping[str, Any]]:
    return [
        e
        for e in entries
        if (account is None or e.get("account") == account)
        and (key is None or e.get("key") == key)
        and (status is None or e.get("status") == status)
    ]


def max_in_window(
    entries: Iterable[Mapping[str, Any]],
    period: float,
    *,
    account: str | None = None,
    key: str | None = None,
    status: int | None = None,
    field: str = "t",
) -> int:
    """The most entries whose server times (``field``, arrival by default) lie within ``period`` seconds
    of each other: DRF's sliding window, ``t_last - t_first < period``. Filters: account, key, status.
    """
    times = sorted(float(e[field]) for e in _select(entries, account, key, status))
    best = lo = 0
    for hi, t in enumerate(times):
        while t - times[lo] >= period:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def status_counts(
    entries: Iterable[Mapping[str, Any]], *, account: str | None = None, key: str | None = None
) -> dict[int, int]:
    """``{status: how many}`` over the selected entries."""
    return dict(Counter(int(e["status"]) for e in _select(entries, account, key, None)))


def count_429(entries: Iterable[Mapping[str, Any]], *, account: str | None = None, key: str | None = None) -> int:
    """How many of the selected requests the double throttled."""
    return status_counts(entries, account=account, key=key).get(429, 0)


class DrfFaceStudio:
    """``with DrfFaceStudio(accounts, redis_url=...) as fs: fs.url``; or ``start()`` / ``stop()``.

    ``time_scale`` divides every throttle period (with Redis it must leave whole seconds: a divisor
    of 60). ``latency`` is seconds before each image answer: a number or a ``(low, high)`` range.
    ``cache_prefix`` keeps runs' counts apart (a fresh one by default; pass the same one to a restarted
    server to keep its counts). ``threads`` > 1 makes gunicorn use threaded workers.
    """

    def __init__(
        self,
        accounts: Accounts,
        *,
        redis_url: str | None = None,
        time_scale: float = 1.0,
        latency: float | tuple[float, float] | None = None,
        workers: int = 2,
        threads: int = 1,
        cache_prefix: str | None = None,
        workdir: Path | str | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        self.redis_url = redis_url
        self.time_scale = time_scale
        self.latency = latency
        self.workers = workers
        self.threads = threads
        self.cache_prefix = cache_prefix or f"fs-{uuid.uuid4().hex[:12]}"
        self.startup_timeout = startup_timeout
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="aioface-drf-")
            workdir = self._tmp.name
        self.workdir = Path(workdir)
        self.accounts_path = self.workdir / "accounts.json"
        self.log_path = self.workdir / "requests.jsonl"
        self.server_log_path = self.workdir / "gunicorn.log"
        write_accounts(self.accounts_path, accounts)
        self.port = 0
        self.url = ""
        self.proc: subprocess.Popen[bytes] | None = None
        self._processes: list[psutil.Process] = []

    # -------------------------------------------------------------- lifecycle
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("FACESTUDIO_DRF_ACCOUNTS", None)
        env.update(
            DJANGO_SETTINGS_MODULE="tests.support.drf_facestudio.settings",
            PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p),
            FACESTUDIO_DRF_ACCOUNTS_FILE=str(self.accounts_path),
            FACESTUDIO_DRF_LOG=str(self.log_path),
            FACESTUDIO_DRF_TIME_SCALE=repr(float(self.time_scale)),
            FACESTUDIO_DRF_CACHE_PREFIX=self.cache_prefix,
            FACESTUDIO_DRF_REDIS_URL=self.redis_url or "",
        )
        lat = self.latency
        env["FACESTUDIO_DRF_LATENCY"] = f"{lat[0]}-{lat[1]}" if isinstance(lat, tuple) else str(lat or 0)
        return env

    def start(self) -> DrfFaceStudio:
        """Start gunicorn and wait until every worker has booted and one answers the readiness probe."""
        if self.proc is not None:
            raise RuntimeError("already started")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        boots_before = {e["pid"] for e in read_log(self.log_path, "boot")}
        cmd = [
            sys.executable, "-m", "gunicorn",
            "--bind", f"127.0.0.1:{self.port}",
            "--workers", str(self.workers),
            "--threads", str(self.threads),
            "--chdir", str(ROOT),
            "--timeout", "30",
            "--graceful-timeout", "3",
            "--log-level", "warning",
            "tests.support.drf_facestudio.wsgi:application",
        ]  # fmt: skip
        with open(self.server_log_path, "ab") as out:
            self.proc = subprocess.Popen(cmd, env=self.env(), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
        try:
            self._wait_ready(boots_before)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, boots_before: set[int]) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + self.startup_timeout
        master = psutil.Process(self.proc.pid)
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({self.proc.returncode}):\n{self.server_output()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn not ready in {self.startup_timeout} s:\n{self.server_output()}")
            children = {p.pid: p for p in master.children()}
            booted = {e["pid"] for e in read_log(self.log_path, "boot")} - boots_before
            if len(booted & set(children)) >= self.workers and self._probe():
                self._processes = [master, *children.values()]
                return
            time.sleep(0.05)

    def _probe(self) -> bool:
        try:
            with OPENER.open(self.url + "/-/ready", timeout=2) as r:
                return bool(r.status == 200)
        except (OSError, urllib.error.URLError):
            return False

    def server_output(self) -> str:
        """The tail of gunicorn's own output (errors, tracebacks)."""
        try:
            return self.server_log_path.read_text(errors="replace")[-4000:]
        except FileNotFoundError:
            return ""

    def worker_pids(self) -> set[int]:
        """The worker processes' PIDs (those alive now, children of the master)."""
        if self.proc is None or self.proc.poll() is not None:
            return set()
        return {p.pid for p in psutil.Process(self.proc.pid).children()}

    def stop(self) -> None:
        """SIGTERM the master (graceful), SIGKILL it after 8 s, then kill any worker left; all by PID."""
        proc, self.proc = self.proc, None
        if proc is not None:
            known = list(self._processes)
            with contextlib.suppress(psutil.Error):
                known += [p for p in psutil.Process(proc.pid).children() if p not in known]
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=8)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
            for p in known:
                try:
                    if p.pid != proc.pid and p.is_running():  # is_running also rules out a reused PID
                        p.kill()
                        p.wait(timeout=5)
                except psutil.Error:
                    pass
            self._processes = []

    def close(self) -> None:
        """Stop, and remove the working directory if this object made it."""
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> DrfFaceStudio:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------- state
    def set_accounts(self, accounts: Accounts) -> None:
        """Replace the account table (e.g. move an account to another class); seen by the next request."""
        write_accounts(self.accounts_path, accounts)

    def read_log(self) -> list[dict[str, Any]]:
        """Every request the server received so far (all workers), in arrival-ish order."""
        return read_log(self.log_path)

    def period(self, seconds: float) -> float:
        """A documented period (60 for a burst, 86400 for a day) as the scaled server sees it."""
        return seconds / self.time_scale
