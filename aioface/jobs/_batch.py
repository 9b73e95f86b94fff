"""Batch jobs from a JSONL file, with a journal (``results.jsonl``) that makes reruns resume.

The journal has one line per job. On start it is read back: a job whose line says ok and whose
file is still there with the recorded size is done and skipped; every other line is dropped (the
file is rewritten atomically), so a job redone now is never recorded twice.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from .. import _json
from .._client import Client
from .._errors import AiofaceError, APIError, ConfigurationError, InvalidRequestError, StorageError
from .._net import unique_name
from .._route import tag_provider
from .._types import ImageResult, Result
from ..providers import BatchOp, operations
from ..results._check import header_dimensions, sniff_format
from ..results._dest import MIN_FREE, SUFFIXES, free_space
from ..tasks._fanout import FanOut, Outcome
from ._routed import AUTO, check_routed, resumable, run_resumed, run_routed

MAX_LINE = 64 * 1024
RESULTS = "results.jsonl"


class JobError(InvalidRequestError):
    """A job line is unusable (bad JSON, unknown op, bad or missing parameters)."""

    code = "invalid_job"


@dataclass(frozen=True)
class Job:
    """One parsed line of a jobs file."""

    id: str
    op: str
    provider: str
    params: dict[str, Any]
    line: int


@dataclass
class Skipped:
    """A job already done by an earlier run."""

    id: str


def _op(op: str, provider: str) -> BatchOp:
    for spec, bop in operations()[op]:
        if spec.name == provider:
            return bop
    raise KeyError((op, provider))


def parse_job(raw: bytes, line: int) -> Job:
    """Parse and check one jobs line; raises :class:`JobError` naming the problem."""
    if len(raw) > MAX_LINE:
        raise JobError(f"line {line}: longer than {MAX_LINE} bytes")
    try:
        data = _json.loads(raw)
    except ValueError:
        raise JobError(f"line {line}: not valid JSON") from None
    if not isinstance(data, dict):
        raise JobError(f"line {line}: a job must be a JSON object")
    jid = data.pop("id", None)
    if isinstance(jid, bool) or not isinstance(jid, (str, int)) or str(jid) == "" or len(str(jid)) > 200:
        raise JobError(f"line {line}: 'id' must be a non-empty string or integer (200 chars at most)", param="id")
    ops = operations()
    op = data.pop("op", None)
    if not isinstance(op, str) or op not in ops:
        raise JobError(f"line {line}: unknown op {op!r}; known: {', '.join(ops)}", param="op")
    offered = [spec.name for spec, _ in ops[op]]
    provider = data.pop("provider", None) or offered[0]
    if provider == AUTO:  # a routed swap (jobs/_routed.py)
        try:
            check_routed(op, data)
        except InvalidRequestError as exc:
            raise JobError(f"line {line}: {exc.message}", param=exc.param) from None
        return Job(str(jid), op, AUTO, data, line)
    if provider not in offered:
        raise JobError(f"line {line}: op {op} is offered by {', '.join(offered)}, not {provider!r}", param="provider")
    bop = _op(op, provider)
    if bop.normalize is not None:
        data = bop.normalize(data)
    missing = bop.required - set(data)
    unknown = set(data) - bop.required - bop.optional
    if missing:
        raise JobError(f"line {line}: {op} needs {', '.join(sorted(missing))}", param=sorted(missing)[0])
    if unknown:
        raise JobError(
            f"line {line}: unknown parameter(s) {', '.join(sorted(unknown))} for {op}", param=sorted(unknown)[0]
        )
    job = Job(str(jid), op, provider, data, line)
    if bop.precheck is not None:
        try:
            bop.precheck(job.params)  # local checks now: a bad job fails before anything is sent
        except InvalidRequestError as exc:
            raise JobError(f"line {line}: {exc.message}", param=exc.param) from None
    return job


def output_stem(out_dir: Path, job_id: str) -> Path:
    """Where a job's image goes (no suffix yet: the image's own is added).

    An id that is a plain name (letters, digits, ``-_``) is the name; any other id (a dot, a
    slash, a leading dot...) is cleaned and tagged with its hash (:func:`unique_name`), so no two
    ids share a file, none keeps a suffix of its own, and no id can name the journal or the lock.
    """
    return out_dir / unique_name(job_id, default="job")


def recover_output(job: Job, out_dir: Path, present: set[str] | frozenset[str] | None = None) -> ImageResult | None:
    """A job whose image was saved but not journaled (the run died in between): adopt, don't repay.

    Files only ever appear under their final name complete (part file, then rename), so one that is
    there and reads as an image is the job's result. Provider ids were lost with the run.
    ``present``: the file names the folder held at start (listed once, so that a job whose file
    is not there costs no file system call on the event loop).
    """
    stem = output_stem(out_dir, job.id)
    for suffix in SUFFIXES.values():
        path = stem.with_name(stem.name + suffix)
        if present is not None and path.name not in present:
            continue
        try:
            with open(path, "rb") as f:
                head = f.read(1 << 16)
            size = path.stat().st_size
        except OSError:
            continue
        fmt = sniff_format(head)
        dims = header_dimensions(head, fmt) if fmt else None
        if fmt is None or dims is None:
            continue
        return ImageResult(job.provider, path, size, fmt, dims[0], dims[1], extra={"recovered": True})
    return None


async def run_job(client: Client, job: Job, out_dir: Path) -> Result:
    """Send one job and save its image (or return its facts: a face analysis)."""
    if job.provider == AUTO:
        return await run_routed(client, job.params, output_stem(out_dir, job.id))
    try:
        return await _op(job.op, job.provider).run(
            client.provider(job.provider), job.params, output_stem(out_dir, job.id)
        )
    except AiofaceError as exc:
        tag_provider(exc, job.provider)  # paid work: the journal names the provider holding the task
        raise


def error_record(exc: BaseException) -> dict[str, Any]:
    """``{"type", "code", "message"}`` for results.jsonl (never a key: messages carry none), with
    ``task_id``, ``request_id`` and ``result_url`` when the error carries them (a result paid for
    but not saved: ``aioface result --task-id`` or ``client.download(result_url)`` fetches it)."""
    code = getattr(exc, "code", None) if isinstance(exc, AiofaceError) else None
    rec: dict[str, Any] = {
        "type": type(exc).__name__,
        "code": str(code) if code else "internal_error",
        "message": str(getattr(exc, "message", "") or exc),
    }
    if isinstance(exc, APIError):
        rec["status"] = exc.status
        rec["provider"] = exc.provider
    if isinstance(exc, AiofaceError):  # paid work not delivered: what fetches it again
        for k in ("task_id", "request_id", "result_url", "served_by"):
            if v := getattr(exc, k, None):
                rec[k] = v
    return rec


class Journal:
    """``results.jsonl``: read back and compacted on open, appended and flushed per job."""

    def __init__(self, out_dir: Path) -> None:
        self.path = out_dir / RESULTS
        self.done: dict[str, dict[str, Any]] = {}
        #: Jobs whose last run failed after their provider created a task: (provider, task id) to
        #: wait for instead of paying again (kept in the journal until the job ends).
        self.tasks: dict[str, tuple[str, str]] = {}
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            self._lock = os.open(out_dir / ".aioface.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ConfigurationError(f"cannot write to {out_dir}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock)
            raise ConfigurationError(f"another aioface batch is writing to {out_dir}") from None
        # A process killed mid-download leaves its part files; nobody else writes here now.
        for stale in out_dir.glob(".*.part"):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        try:
            self._load(out_dir)
            #: Image files already in the folder (candidates for adoption), listed once.
            self.present = frozenset(
                e.name for e in os.scandir(out_dir) if e.is_file() and os.path.splitext(e.name)[1] in SUFFIXES.values()
            )
            self._f = open(self.path, "ab")  # noqa: SIM115 - closed in close()
        except OSError as exc:
            os.close(self._lock)
            raise ConfigurationError(f"cannot write the journal in {out_dir}: {exc.strerror or exc}") from None

    def _load(self, out_dir: Path) -> None:
        if not self.path.exists():
            return
        kept: list[bytes] = []
        with open(self.path, "rb") as f:
            for raw in f:
                try:
                    rec = _json.loads(raw)
                except ValueError:
                    continue  # a line cut by a crash
                if not isinstance(rec, dict) or not isinstance(rec.get("id"), str):
                    continue
                if rec.get("ok") is False and isinstance(rec.get("error"), dict):
                    task = resumable(rec["error"])
                    if task is not None and rec["id"] not in self.done:
                        self.tasks[rec["id"]] = task
                        kept.append(_json.dumps_line(rec))
                    continue
                if rec.get("ok") is not True:
                    continue
                if rec["id"] in self.done:
                    continue
                if "path" in rec:  # an image: done while its file is there, whole
                    path = out_dir / str(rec["path"])
                    if path.parent != out_dir or not path.is_file() or path.stat().st_size != rec.get("bytes"):
                        continue
                # else facts (a face analysis) or a task handed to a webhook: the line itself is the result
                self.done[rec["id"]] = rec
                self.tasks.pop(rec["id"], None)
                kept.append(_json.dumps_line(rec))
        tmp = self.path.with_name(f".{RESULTS}.tmp")
        with open(tmp, "wb") as f:
            f.writelines(kept)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def append(self, rec: dict[str, Any]) -> None:
        """Write one line; :class:`StorageError` when the disk refuses it (the line is then not there)."""
        try:
            self._f.write(_json.dumps_line(rec))
            self._f.flush()
        except OSError as exc:
            raise StorageError(
                f"cannot write the journal {self.path}: {exc.strerror or exc}", errno=exc.errno
            ) from None

    def close(self) -> None:
        try:
            self._f.close()
        except OSError:
            pass  # a line cut by a full disk is dropped when the journal is read back
        finally:
            os.close(self._lock)


@dataclass
class BatchSummary:
    """Counts of one batch run."""

    ok: int = 0
    failed: int = 0
    skipped: int = 0
    elapsed: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)
    #: Jobs running right now (for progress displays).
    in_flight: int = 0
    #: Why the run stopped before the end (a disk that refuses results), or None.
    stopped: str | None = None

    @property
    def total(self) -> int:
        return self.ok + self.failed + self.skipped


def read_job_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """``(line number, bytes)`` of each non-blank line of a jobs file, holding at most
    ``MAX_LINE + 1`` bytes of any line: a longer one is yielded as its first ``MAX_LINE + 1`` bytes
    (which :func:`parse_job` refuses, "longer than") and the rest is skipped as it is read, so a
    256 MiB line costs no more memory than a short one."""
    with open(path, "rb") as f:
        n = 0
        while raw := f.readline(MAX_LINE + 1):
            n += 1
            if len(raw) > MAX_LINE and not raw.endswith(b"\n"):
                while (rest := f.readline(1 << 16)) and not rest.endswith(b"\n"):
                    pass  # the rest of a line too long to run: read past, never kept
                yield n, raw
            elif raw.strip():
                yield n, raw


def count_jobs(path: Path) -> int | None:
    """How many jobs (non-blank lines) a regular file holds, read with :func:`read_job_lines`'
    bound; None for a pipe, which can be read only once."""
    if not stat.S_ISREG(path.stat().st_mode):
        return None
    return sum(1 for _ in read_job_lines(path))


async def run_batch(
    client: Client,
    jobs_path: Path,
    out_dir: Path,
    *,
    concurrency: int = 16,
    on_outcome: Callable[[Outcome[tuple[int, bytes], Result | Skipped], BatchSummary], None] | None = None,
) -> BatchSummary:
    """Run every job of ``jobs_path`` into ``out_dir``; resumes from ``out_dir/results.jsonl``.

    Stops taking new jobs (those running are cancelled, nothing more is paid for) when the disk
    refuses a result or a journal line: ``summary.stopped`` says why.
    """
    _refuse_own_journal(jobs_path, out_dir)
    journal = Journal(out_dir)
    summary = BatchSummary()
    seen: set[str] = set()
    start = time.monotonic()
    room = _Room(out_dir)

    async def one(item: tuple[int, bytes]) -> Result | Skipped:
        line, raw = item
        job = parse_job(raw, line)
        if job.id in seen:
            raise JobError(f"line {line}: duplicate id {job.id!r}", param="id")
        seen.add(job.id)
        if job.id in journal.done:
            return Skipped(job.id)
        adopted = recover_output(job, out_dir, journal.present) if journal.present else None
        if adopted is not None:
            return adopted
        task = journal.tasks.get(job.id)
        if task is not None:  # created (and paid for) by an earlier run: wait for it, never pay again
            return await run_resumed(client, task[0], task[1], output_stem(out_dir, job.id))
        if job.provider != AUTO and not _op(job.op, job.provider).writes_image:
            return await run_job(client, job, out_dir)
        async with room.claim():  # before sending: waits, or refuses, when the disk cannot take one more result
            try:
                result = await run_job(client, job, out_dir)
            except StorageError as exc:
                if _disk_refused(exc):
                    room.refused = exc  # no job starts after this one: nothing more is paid for
                raise
        if isinstance(result, ImageResult) and result.bytes:
            room.saw(result.bytes)
        return result

    try:
        async with FanOut(one, read_job_lines(jobs_path), concurrency=concurrency) as results:
            async for o in results:
                line, raw = o.item
                try:
                    if isinstance(o.value, Skipped):
                        summary.skipped += 1
                    elif o.error is None and o.value is not None:  # an image, or facts (a face analysis)
                        rec = {"id": _job_id(raw, line), "ok": True, **o.value.to_json()}
                        if isinstance(o.value, ImageResult) and o.value.path is not None:
                            rec["path"] = o.value.path.name
                        summary.ok += 1
                        journal.append(rec)
                    else:
                        assert o.error is not None
                        err = error_record(o.error)
                        summary.failed += 1
                        summary.errors[err["code"]] = summary.errors.get(err["code"], 0) + 1
                        journal.append({"id": _job_id(raw, line), "ok": False, "line": line, "error": err})
                        if _disk_refused(o.error):
                            summary.stopped = str(o.error)
                except StorageError as exc:
                    summary.stopped = str(exc)
                if on_outcome is not None:
                    summary.in_flight = results.in_flight
                    on_outcome(o, summary)
                if summary.stopped is not None:
                    break  # leaving the block cancels the jobs still running: nothing more is paid for
    finally:
        journal.close()
        summary.elapsed = time.monotonic() - start
    return summary


def _refuse_own_journal(jobs_path: Path, out_dir: Path) -> None:
    """A batch fed its own journal would read the lines it appends as new jobs, for ever."""
    own = out_dir / RESULTS
    with contextlib.suppress(OSError):
        if jobs_path.exists() and own.exists() and os.path.samefile(jobs_path, own):
            raise InvalidRequestError(
                f"{jobs_path} is the journal of {out_dir}: a batch cannot read its own results as jobs",
                param="jobs",
            )


_DISK_REFUSED = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


class _Room:
    """The space a batch's results need on the disk of its folder, checked before each job is sent.

    A job that writes an image is sent only when the disk has room for a result of the largest
    size seen so far, for it and for each job already running (their part files still grow),
    plus :data:`MIN_FREE`. Short of that it waits for a running job to end and looks again; with
    none running, :class:`StorageError` (``ENOSPC``) before anything is paid for. Once a result
    was refused for want of space (``refused``), no job is sent at all: at most the jobs already
    in flight were paid for in vain.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.largest = 0
        self.running = 0
        self.refused: StorageError | None = None
        self._ended = anyio.Event()

    def saw(self, size: int) -> None:
        self.largest = max(self.largest, size)

    @contextlib.asynccontextmanager
    async def claim(self) -> AsyncIterator[None]:
        while True:
            if self.refused is not None:
                raise StorageError(f"not sent: {self.refused.message}", errno=self.refused.errno)
            free = free_space(self.folder) if self.largest else None
            if free is None or free >= self.largest * (self.running + 1) + MIN_FREE:
                break
            if not self.running:
                raise StorageError(
                    f"not sent: not enough space left in {self.folder} for another result "
                    f"({free} bytes free; results here take up to {self.largest} bytes)",
                    errno=errno.ENOSPC,
                )
            await self._ended.wait()
        self.running += 1
        try:
            yield
        finally:
            self.running -= 1
            self._ended.set()
            self._ended = anyio.Event()


def _disk_refused(exc: BaseException) -> bool:
    """A result that could not be saved because of the disk: every further job would fail the same way."""
    return isinstance(exc, StorageError) and exc.errno in _DISK_REFUSED


def _job_id(raw: bytes, line: int) -> str:
    if len(raw) > MAX_LINE:  # refused unread: never parsed
        return f"line:{line}"
    with contextlib.suppress(ValueError):
        data = _json.loads(raw)
        if isinstance(data, dict) and isinstance(data.get("id"), (str, int)) and not isinstance(data["id"], bool):
            return str(data["id"])[:200]
    return f"line:{line}"
