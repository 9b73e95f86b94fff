"""A local emulator of Face Studio, Ace Data Cloud and AILabAPI (aiohttp.web, loopback only).

>>> async with Emulator(EmulatorConfig(time_scale=60)) as emu:   # doctest: +SKIP
...     async with emu.client() as client:
...         await client.facestudio.generate("face.jpg", age=30)
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .._net import bound_port
from ._app import STATE, create_app
from ._process import EmulatorProcess
from ._state import FAULT_KINDS, EmulatorConfig, Faults, State

if TYPE_CHECKING:
    from .._client import Client

__all__ = ["FAULT_KINDS", "Emulator", "EmulatorConfig", "EmulatorProcess", "Faults", "create_app"]

#: The key the emulator's own clients use (it accepts any non-empty key by default).
DEMO_KEY = "emulator-demo-key"


class Emulator:
    """Run the emulator in this event loop: ``async with Emulator() as emu: emu.url``."""

    def __init__(self, config: EmulatorConfig | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.config = config or EmulatorConfig()
        self.host = host
        self.port = port
        self.app = create_app(self.config)
        self._runner: web.AppRunner | None = None

    @property
    def state(self) -> State:
        return self.app[STATE]

    @property
    def stats(self) -> Counter[str]:
        """Counters: requests per provider, ``throttled`` (429s sent), faults injected, ..."""
        return self.state.stats

    @property
    def url(self) -> str:
        """The base URL to give every provider."""
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = bound_port(site)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def client(self, **kwargs: Any) -> Client:
        """A :class:`aioface.Client` pointed at this emulator, with demo keys and its time scale.

        Limits are not persisted unless ``state_dir`` is given. Keyword arguments override.
        """
        from .._client import Client
        from ..providers import providers

        names = list(providers())
        opts: dict[str, Any] = {
            "keys": dict.fromkeys(names, DEMO_KEY),
            "base_urls": dict.fromkeys(names, self.url),
            "options": {"acedata": {"platform_url": self.url}},  # Ace Data's file uploads, here too
            "time_scale": self.config.time_scale,
            "persist_limits": "state_dir" in kwargs,
            "env": {},
        }
        opts.update(kwargs)
        return Client(**opts)
