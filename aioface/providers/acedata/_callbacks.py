"""A webhook receiver for Ace Data's asynchronous swap (``callback_url``).

Each submission gets its own URL ``{public_url}{path}/{nonce}``: the nonce is the shared secret and
says which call the callback belongs to, so a callback that arrives before the submit answer is
still matched. Callbacks to unknown nonces, with a task id other than the submitted one, oversize
or not JSON are refused; a repeated callback is answered 200 and changes nothing. The body is read
whole however it arrives (in pieces, chunked, slowly), up to ``max_body`` bytes and within
``body_timeout`` seconds.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import anyio

if TYPE_CHECKING:  # aiohttp.web is imported when a receiver serves or answers, not with aioface
    from aiohttp import web

from ... import _json
from ..._errors import ConfigurationError
from ..._net import bound_port

MAX_BODY = 64 * 1024
#: Seconds a sender may take to deliver one callback body.
BODY_TIMEOUT = 30.0
_DONE_MEMORY = 10_000


class _Pending:
    __slots__ = ("event", "payload", "task_id")

    def __init__(self) -> None:
        self.event = anyio.Event()
        self.payload: dict[str, Any] | None = None
        self.task_id: str | None = None


class CallbackReceiver:
    """Receives provider callbacks on its own server or mounted into your aiohttp app.

    ``async with CallbackReceiver(port=8080, public_url="https://me.example") as rx:`` then pass
    ``callback=rx`` to :meth:`AceData.swap`. Use :meth:`mount` instead of ``async with`` to serve
    the route from an existing ``aiohttp.web.Application``. A body larger than ``max_body`` bytes
    is refused (413), one not complete within ``body_timeout`` seconds too (408).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        public_url: str | None = None,
        path: str = "/aioface/callback",
        max_body: int = MAX_BODY,
        body_timeout: float = BODY_TIMEOUT,
    ) -> None:
        if not path.startswith("/"):
            raise ConfigurationError("callback path must start with '/'")
        if not body_timeout > 0:
            raise ConfigurationError("body_timeout must be > 0")
        self.host = host
        self.port = port
        self.path = path.rstrip("/")
        self.max_body = max_body
        self.body_timeout = body_timeout
        self._public_url = public_url.rstrip("/") if public_url else None
        self._pending: dict[str, _Pending] = {}
        self._done: OrderedDict[str, str | None] = OrderedDict()
        self._runner: web.AppRunner | None = None
        #: Counters: accepted, duplicate, rejected.
        self.stats = {"accepted": 0, "duplicate": 0, "rejected": 0}

    # -- serving ------------------------------------------------------------------------
    def mount(self, app: web.Application) -> None:
        """Add the callback route to an existing application (before it starts)."""
        app.router.add_post(self.path + "/{nonce}", self._handle)

    async def start(self) -> None:
        """Serve on ``host:port`` (port 0 picks a free one)."""
        from aiohttp import web

        app = web.Application(client_max_size=self.max_body)
        self.mount(app)
        # After a refusal, wait at most a second for the rest of a body we will not read (aiohttp
        # lingers 10 s by default, and stop() would wait for it).
        self._runner = web.AppRunner(app, access_log=None, lingering_time=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = bound_port(site)

    async def stop(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> CallbackReceiver:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def public_url(self) -> str:
        """The base URL the provider must reach."""
        if self._public_url:
            return self._public_url
        return f"http://{self.host}:{self.port}"

    # -- matching -----------------------------------------------------------------------
    def register(self) -> tuple[str, str]:
        """A new (nonce, callback_url) for one submission."""
        nonce = secrets.token_urlsafe(18)
        self._pending[nonce] = _Pending()
        return nonce, f"{self.public_url}{self.path}/{nonce}"

    def bind(self, nonce: str, task_id: str) -> None:
        """Record the task id the provider gave this submission."""
        p = self._pending.get(nonce)
        if p is not None:
            p.task_id = task_id

    def forget(self, nonce: str) -> None:
        """Drop a submission (finished, failed or timed out)."""
        self._pending.pop(nonce, None)

    async def wait(self, nonce: str, timeout: float) -> dict[str, Any] | None:
        """The callback payload, or None after ``timeout`` seconds."""
        p = self._pending.get(nonce)
        if p is None:
            return None
        with anyio.move_on_after(timeout):
            await p.event.wait()
        return p.payload

    def _reject(self, status: int, why: str) -> web.Response:
        from aiohttp import web

        self.stats["rejected"] += 1
        return web.json_response({"ok": False, "error": why}, status=status)

    async def _read_body(self, request: web.Request) -> bytes | web.Response:
        """The whole body, however it arrives (one piece, several, chunked, slowly), or a refusal."""
        if request.content_length is not None and request.content_length > self.max_body:
            return self._reject(413, "body too large")
        buf = bytearray()
        try:
            with anyio.fail_after(self.body_timeout):
                async for piece in request.content.iter_any():
                    buf += piece
                    if len(buf) > self.max_body:
                        return self._reject(413, "body too large")
        except TimeoutError:
            return self._reject(408, "body not received in time")
        except Exception:  # the sender went away or broke the framing
            return self._reject(400, "unreadable body")
        return bytes(buf)

    async def _handle(self, request: web.Request) -> web.Response:
        from aiohttp import web

        nonce = request.match_info["nonce"]
        if nonce not in self._pending and nonce not in self._done:
            return self._reject(403, "unknown callback secret")  # not worth reading the body of
        raw = await self._read_body(request)
        if isinstance(raw, web.Response):
            return raw
        try:
            payload = _json.loads(raw)
        except ValueError:
            return self._reject(400, "body is not JSON")
        if not isinstance(payload, dict) or not isinstance(payload.get("task_id"), str):
            return self._reject(400, "no task_id")
        task_id = payload["task_id"]
        if nonce in self._done:
            if self._done[nonce] == task_id:
                self.stats["duplicate"] += 1
                return web.json_response({"ok": True, "duplicate": True})
            return self._reject(404, "unknown task")
        p = self._pending.get(nonce)
        if p is None:
            return self._reject(403, "unknown callback secret")
        if p.task_id is not None and p.task_id != task_id:
            return self._reject(404, "unknown task")
        p.payload = payload
        p.task_id = task_id
        p.event.set()
        self._done[nonce] = task_id
        while len(self._done) > _DONE_MEMORY:
            self._done.popitem(last=False)
        self.stats["accepted"] += 1
        return web.json_response({"ok": True})
