"""The exceptions aioface raises.

::

    AiofaceError
    ├── ConfigurationError          bad key, base URL, limit spec or option (also ValueError)
    ├── ClientClosedError           a client or view used before open() or after aclose() (also RuntimeError)
    ├── InvalidRequestError         a parameter is wrong; found locally, nothing was sent (also ValueError)
    │   └── ImageRejectedError      a local image breaks the provider's rules (type, bytes, pixels)
    ├── TransportError              the network failed us
    │   ├── ConnectError            no connection was made: the request was certainly not sent
    │   ├── RequestTimeoutError     no complete answer in time (or a body slower than the minimum rate)
    │   └── ProtocolError           the answer could not be understood (bad JSON, cut body, wrong length)
    ├── APIError                    the provider answered with an error (provider, status, code, message, request_id)
    │   ├── BadRequestError         400 / 422
    │   ├── AuthenticationError     401
    │   ├── PermissionDeniedError   403
    │   ├── NotFoundError           404 / 410
    │   ├── RateLimitError          429 (retry_after says when to try again)
    │   │   └── QuotaExceededError  out of credit or daily budget: waiting a little will not help
    │   └── ServerError             5xx
    │       └── GenerationTimeoutError  the provider gave up on a job (Ace's 504 timeout): never retried
    ├── TaskError                   an asynchronous task did not give a result (task_id)
    │   ├── TaskFailedError         the provider says the task failed
    │   └── TaskTimeoutError        no result before the deadline
    ├── FeedError                   the ids/items iterable raised (error); pending: read, got no outcome
    ├── DownloadError               a result could not be saved (size, scheme, not an image, a bomb); no file is left
    │                               (after paid work: task_id / request_id and result_url, to fetch it again)
    │   └── StorageError            the disk refused it (full, read-only, name too long): errno says why
    └── LimiterTimeoutError         no rate-limit slot within the acquire timeout

Any error raised after a provider did paid work carries what is needed to fetch the result again:
``task_id`` and/or ``request_id``, and ``result_url`` where the provider gave one (see
:meth:`AiofaceError.add_ids`). No exception carries an API key: messages are built from provider
answers and our own text only.
"""

from __future__ import annotations

__all__ = [
    "APIError",
    "AiofaceError",
    "AuthenticationError",
    "BadRequestError",
    "ClientClosedError",
    "ConfigurationError",
    "ConnectError",
    "DownloadError",
    "FeedError",
    "ImageRejectedError",
    "InvalidRequestError",
    "LimiterTimeoutError",
    "NotFoundError",
    "PermissionDeniedError",
    "ProtocolError",
    "QuotaExceededError",
    "RateLimitError",
    "RequestTimeoutError",
    "ServerError",
    "GenerationTimeoutError",
    "StorageError",
    "TaskError",
    "TaskFailedError",
    "TaskTimeoutError",
    "TransportError",
    "api_error_for_status",
]


class AiofaceError(Exception):
    """Base class of every error aioface raises."""

    code: str = "aioface_error"
    #: Set on an error raised after a provider did paid work (a result that could not be
    #: delivered, say): the provider's task id, its request or trace id, and the URL of the
    #: result where it gave one, so that the result can still be fetched
    #: (``client.download(result_url)``, ``aioface result --task-id``). None when not known.
    task_id: str | None = None
    request_id: str | None = None
    result_url: str | None = None
    #: The provider that did the paid work, set with the ids (``APIError`` and ``TaskError`` set it too).
    provider: str | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def add_ids(
        self,
        *,
        task_id: str | None = None,
        request_id: str | None = None,
        result_url: str | None = None,
        provider: str | None = None,
    ) -> None:
        """Record the ids of the paid work this error concerns (an id already set is kept)."""
        if provider and not self.provider:
            self.provider = provider
        if task_id and not self.task_id:
            self.task_id = task_id
        if request_id and not self.request_id:
            self.request_id = request_id
        if result_url and not self.result_url:
            self.result_url = result_url


class ConfigurationError(AiofaceError, ValueError):
    """A key, base URL, limit spec or option is unusable."""

    code = "configuration_error"


class ClientClosedError(AiofaceError, RuntimeError):
    """A client, or a view of one, was used while not open (before ``open()`` or after ``aclose()``)."""

    code = "client_closed"


class InvalidRequestError(AiofaceError, ValueError):
    """A parameter is invalid. Raised before anything is sent."""

    code = "invalid_request"

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class ImageRejectedError(InvalidRequestError):
    """A local image breaks a provider rule (format, byte size, pixel size)."""

    code = "image_rejected"

    def __init__(self, message: str, *, param: str | None = None, rule: str = "") -> None:
        super().__init__(message, param=param)
        self.rule = rule


class TransportError(AiofaceError):
    """The request or its answer was lost on the way."""

    code = "transport_error"

    def __init__(self, message: str, *, sent: bool = True) -> None:
        super().__init__(message)
        #: False only when the request certainly never reached the server.
        self.sent = sent


class ConnectError(TransportError):
    """No connection could be made; the request was not sent."""

    code = "connect_error"

    def __init__(self, message: str) -> None:
        super().__init__(message, sent=False)


class RequestTimeoutError(TransportError):
    """No complete answer arrived in time."""

    code = "timeout"


class ProtocolError(TransportError):
    """The answer was malformed: bad JSON, a cut body or a wrong length."""

    code = "protocol_error"


class APIError(AiofaceError):
    """The provider answered with an error.

    ``code`` and ``message`` are the provider's own; ``request_id`` is its trace or request id.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status: int,
        code: str,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.status = status
        self.code = code
        self.request_id = request_id
        #: Seconds the provider asked us to wait, when it said so.
        self.retry_after = retry_after

    def __str__(self) -> str:
        rid = f", request_id={self.request_id}" if self.request_id else ""
        return f"{self.provider} {self.status} {self.code}: {self.message}{rid}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(provider={self.provider!r}, status={self.status}, "
            f"code={self.code!r}, message={self.message!r}, request_id={self.request_id!r})"
        )


class BadRequestError(APIError):
    """400 or 422: the provider refused the parameters."""


class AuthenticationError(APIError):
    """401: missing or invalid key."""


class PermissionDeniedError(APIError):
    """403: the key may not do this (for example a tier without seed control)."""


class NotFoundError(APIError):
    """404 or 410: no such endpoint, task or (expired) result."""


class RateLimitError(APIError):
    """429: too many requests; ``retry_after`` holds the hint when there was one."""


class QuotaExceededError(RateLimitError):
    """Out of credit or budget: retrying soon will not help."""


class ServerError(APIError):
    """5xx: the provider failed."""


class GenerationTimeoutError(ServerError):
    """The provider gave up on a job it was doing while we waited (Ace Data's 504 ``timeout`` of a
    synchronous swap): it may have been billed, so it is never retried; no task id comes with it."""


class TaskError(AiofaceError):
    """An asynchronous task gave no result."""

    code = "task_error"
    task_id: str

    def __init__(self, message: str, *, provider: str, task_id: str) -> None:
        super().__init__(message)
        self.provider = provider
        self.task_id = task_id


class TaskFailedError(TaskError):
    """The provider reports that the task failed."""

    code = "task_failed"


class TaskTimeoutError(TaskError):
    """The task gave no result before the deadline."""

    code = "task_timeout"


class FeedError(AiofaceError):
    """The iterable feeding ``wait_many`` or ``fan_out`` raised (``error``, also ``__cause__``).

    Raised once every id or item read before the error (``taken`` of them) has had its outcome
    delivered, from the ``async for`` (when it runs to the end) or from leaving the ``async with``
    block (when it is left earlier). ``pending``: the ids or items read whose outcome the caller
    did not get (left early): nothing already paid for goes unnamed.
    """

    code = "feed_error"

    def __init__(self, error: BaseException, *, taken: int, pending: tuple[object, ...] = ()) -> None:
        what = f"{type(error).__name__}: {error}"
        left = f"; {len(pending)} of them got no outcome (see .pending)" if pending else ""
        super().__init__(f"the ids/items feed raised after {taken} were read ({what}){left}")
        self.error = error
        self.taken = taken
        self.pending = pending


class DownloadError(AiofaceError):
    """A result could not be saved; no partial file is left behind. After paid work it carries
    ``task_id`` / ``request_id`` and ``result_url`` (where the provider gave them)."""

    code = "download_error"


class StorageError(DownloadError):
    """The result could not be written to its destination (disk full, read-only, name too long,
    a directory in the way); ``errno`` is the operating system's reason. No partial file is left."""

    code = "storage_error"

    def __init__(self, message: str, *, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno


class LimiterTimeoutError(AiofaceError):
    """No rate-limit slot became free within the acquire timeout."""

    code = "limiter_timeout"


_STATUS_CLASSES: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    410: NotFoundError,
    422: BadRequestError,
    429: RateLimitError,
}


def api_error_for_status(status: int) -> type[APIError]:
    """The APIError subclass that matches an HTTP status."""
    if status >= 500:
        return ServerError
    return _STATUS_CLASSES.get(status, APIError)
