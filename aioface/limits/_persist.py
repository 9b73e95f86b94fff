"""Rate-limit budgets on disk: send times and learned facts per (provider, hashed key), in locked files."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from .. import _json
from .._config import CACHE_DIR_ENV
from .._errors import ConfigurationError
from ._rate import key_digest

log = logging.getLogger("aioface")

__all__ = ["BudgetStore", "budget_file", "budget_path", "check_budget_dir"]


class BudgetStore:
    """Send times of one (provider, key) on disk, so long windows survive restarts, and what that
    key's tier was last learned to be (so a rerun does not start from a lower assumed tier).

    Send times: one float (wall-clock seconds) a line; every access holds ``flock`` so processes can
    share it. The tier: a small JSON file beside it (``<budget>.tier``), replaced atomically.
    A folder that cannot hold the file at start is a :class:`ConfigurationError`; a write that
    fails later (disk full, turned read-only) never reaches the limiter: saving then stops, with
    one warning, and the limits go on in memory.
    """

    def __init__(self, path: Path, keep: float) -> None:
        self.path = path
        self.keep = keep
        #: Why persisting stopped (None while it works).
        self.failed: str | None = None
        try:  # the file itself is made on first use; here only whether it could be
            path.parent.mkdir(parents=True, exist_ok=True)
            if os.path.lexists(path):
                os.close(os.open(path, os.O_RDWR))  # a folder in the way, a read-only disk...
            elif os.statvfs(path.parent).f_flag & os.ST_RDONLY:
                raise OSError(errno.EROFS, os.strerror(errno.EROFS))
            elif not os.access(path.parent, os.W_OK | os.X_OK):
                raise OSError(errno.EACCES, os.strerror(errno.EACCES))
        except OSError as exc:
            raise ConfigurationError(
                f"rate-limit budgets cannot be kept in {path.parent}: {exc.strerror or exc} "
                f"(point {CACHE_DIR_ENV} or state_dir at a writable folder, or pass persist_limits=False)"
            ) from None

    @property
    def tier_path(self) -> Path:
        """The small JSON file beside the budget holding what was learned about the key (its tier)."""
        return self.path.with_name(self.path.name + ".tier")

    def load_meta(self) -> dict[str, str]:
        """Small facts learned about this (provider, key), as :meth:`save_meta` was given them; {} if none.

        Hints, not facts: the provider may have changed the plan since. A damaged file is no facts.
        """
        try:
            data = _json.loads(self.tier_path.read_bytes())
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str) and v}

    def save_meta(self, values: Mapping[str, str]) -> None:
        """Remember ``values`` beside those already kept (only writes when something changed).

        Never raises: a disk that refuses it stops saving, with the store's one warning."""
        if self.failed is not None:
            return
        meta = self.load_meta()
        if all(meta.get(k) == v for k, v in values.items()):
            return
        meta.update(values)
        tmp = self.tier_path.with_name(f".{self.tier_path.name}.{os.getpid()}.part")
        try:
            tmp.write_bytes(_json.dumps({**meta, "learned_at": round(time.time(), 3)}))
            os.replace(tmp, self.tier_path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                tmp.unlink()
            self._give_up(exc)

    def load_tier(self) -> str | None:
        """The tier last learned for this (provider, key) (as :meth:`save_tier` was given it), or None.

        A hint, not a fact: the provider may have changed the plan since. Use it for the limits
        before the first answer, one request at a time until an answer confirms it
        (:meth:`RateLimiter.probe_first`).
        """
        return self.load_meta().get("tier")

    def save_tier(self, tier: str) -> None:
        """Remember the tier an answer named (call it when the tier changes, not on every answer)."""
        self.save_meta({"tier": tier})

    @contextlib.contextmanager
    def _locked(self) -> Iterator[int]:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield fd
        finally:
            os.close(fd)

    def _give_up(self, exc: OSError) -> None:
        self.failed = exc.strerror or str(exc)
        log.warning(
            "rate-limit budget %s cannot be saved in %s (%s): limits go on in memory only, so a rerun "
            "may overspend what this run sends",
            self.path.stem,
            self.path.parent,
            self.failed,
        )

    def load(self, now: float) -> list[float]:
        """Stamps newer than ``keep`` seconds; compacts the file while holding the lock (when it can)."""
        try:
            with self._locked() as fd:
                raw = b""
                while chunk := os.read(fd, 1 << 16):
                    raw += chunk
                stamps: list[float] = []
                for line in raw.split(b"\n"):
                    with contextlib.suppress(ValueError):
                        t = float(line)
                        if now - self.keep < t <= now + 60:
                            stamps.append(t)
                kept = b"".join(b"%.3f\n" % t for t in stamps)
                try:
                    # Over the old lines, then cut: never more space than the file had (a full
                    # disk cannot lose the budget between a truncate and a write).
                    if len(kept) <= len(raw):
                        os.pwrite(fd, kept, 0)
                        os.ftruncate(fd, len(kept))
                except OSError as exc:
                    self._give_up(exc)  # read, but cannot be written: spent budget still counts
                return sorted(stamps)
        except OSError as exc:
            raise ConfigurationError(
                f"rate-limit budgets cannot be read from {self.path.parent}: {exc.strerror or exc} "
                f"(point {CACHE_DIR_ENV} or state_dir at a usable folder, or pass persist_limits=False)"
            ) from None

    def append(self, stamp: float) -> None:
        """Save one stamp; never raises (after a failure, saving stops with one warning)."""
        if self.failed is not None:
            return
        try:
            with self._locked() as fd:
                os.lseek(fd, 0, os.SEEK_END)
                data = b"%.3f\n" % stamp
                if os.write(fd, data) != len(data):
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError as exc:
            self._give_up(exc)


def check_budget_dir(state_dir: Path) -> None:
    """:class:`ConfigurationError` unless rate-limit budgets can be kept under ``state_dir``
    (made when missing): for a clear message at start instead of one failure per call."""
    folder = state_dir / "limits"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        st = os.statvfs(folder)
        why = (
            "read-only file system"
            if st.f_flag & os.ST_RDONLY
            else None
            if os.access(folder, os.W_OK | os.X_OK)
            else "not writable"
        )
    except OSError as exc:
        why = exc.strerror or str(exc)
    if why is not None:
        raise ConfigurationError(
            f"rate-limit budgets cannot be kept in {folder}: {why} "
            f"(point {CACHE_DIR_ENV} or state_dir at a writable folder, or pass persist_limits=False)"
        )


def budget_path(state_dir: Path, provider: str, key: str | None) -> Path:
    """Where the budget of (provider, key) lives; the key only ever appears hashed."""
    return budget_file(state_dir, provider, key_digest(key))


def budget_file(state_dir: Path, provider: str, key_hash: str) -> Path:
    """Where the budget of (provider, hashed key) lives."""
    return state_dir / "limits" / f"{provider}-{key_hash}.log"
