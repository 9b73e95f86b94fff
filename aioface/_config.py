"""Client settings in one place: every ``AIOFACE_*`` name and default, read once (arguments > env > defaults)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from ._errors import ConfigurationError
from ._retry import RetryPolicy
from .results._check import DEFAULT_MAX_BYTES
from .tasks._polling import PollPolicy

if TYPE_CHECKING:  # limits/ reads its names from here: import it only where used
    from .limits._protocols import LimitsStore
    from .limits._rate import Rate


class ProviderSpec(Protocol):
    """What settings need of a provider's spec (``aioface.providers.ProviderSpec`` has it)."""

    @property
    def name(self) -> str: ...
    @property
    def key_env(self) -> str: ...
    @property
    def default_base_url(self) -> str: ...


# -- the environment's names ---------------------------------------------------------------
#: Every variable aioface reads starts with this.
ENV_PREFIX = "AIOFACE_"
#: The folder limits and learned task durations are kept in (default: the user cache dir).
CACHE_DIR_ENV = "AIOFACE_CACHE_DIR"
#: ``local`` or a Redis URL: where limits are kept and shared.
LIMITS_STORE_ENV = "AIOFACE_LIMITS_STORE"
#: The CLI's log level (``DEBUG`` shows every request; keys are never logged).
LOG_LEVEL_ENV = "AIOFACE_LOG_LEVEL"
#: ``asyncio`` turns the CLI's uvloop off.
LOOP_ENV = "AIOFACE_LOOP"
#: Per provider: ``AIOFACE_<PROVIDER>_KEY`` (Ace Data Cloud's spec says ``TOKEN``), ``_BASE_URL``, ``_LIMITS``,
#: ``_ACCOUNT`` (a label: keys given the same one share every limit, as the server counts per account).
KEY, TOKEN, BASE_URL, LIMITS, ACCOUNT = "KEY", "TOKEN", "BASE_URL", "LIMITS", "ACCOUNT"
#: Ace Data's platform (file uploads): AIOFACE_ACEDATA_PLATFORM_URL.
PLATFORM_URL = "PLATFORM_URL"

# -- defaults ----------------------------------------------------------------------------
#: The application name platformdirs files the default state folder under.
APP_NAME = "aioface"
#: Limit windows this long or longer are saved on disk, so a rerun does not overspend them.
PERSIST_MIN_PERIOD = 3600.0
#: Task durations learned by the pollers, kept with the limits so a new process polls warm.
DURATIONS_FILE = "polling.json"
DEFAULT_TIMEOUT = 60.0
DEFAULT_LIMIT_MARGIN = 0.05
DEFAULT_CONNECTIONS = 100
DEFAULT_LIMIT_WAIT_NOTICE = 3.0


def env_prefix(provider: str) -> str:
    """``AIOFACE_<PROVIDER>_``: how every variable of ``provider`` starts."""
    return f"{ENV_PREFIX}{provider.upper()}_"


def provider_env(provider: str, what: str) -> str:
    """The variable holding ``what`` (:data:`KEY`, :data:`TOKEN`, :data:`BASE_URL`, :data:`LIMITS`) for ``provider``."""
    return env_prefix(provider) + what


def default_state_dir(env: Mapping[str, str]) -> Path:
    """The folder limits persist in when no ``state_dir`` is given: ``AIOFACE_CACHE_DIR`` or the user cache."""
    given = env.get(CACHE_DIR_ENV)
    if given:
        return Path(given)
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME))


def persisted(rates: Sequence[Rate]) -> bool:
    """True when a limiter with these rates keeps its sends on disk (a window of an hour or more)."""
    return any(r.period >= PERSIST_MIN_PERIOD for r in rates)


# -- numbers -----------------------------------------------------------------------------
def check_number(
    name: str, value: object, *, above: float | None = None, at_least: float | None = None, integer: bool = False
) -> None:
    """:class:`ConfigurationError` naming ``name`` unless ``value`` is a number (an int when
    ``integer``; never a bool or NaN) ``> above`` / ``>= at_least``: checked before anything is sent."""
    kind = "an integer" if integer else "a number"
    ok_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not ok_type:
        raise ConfigurationError(f"{name} must be {kind}, got {type(value).__name__}")
    assert isinstance(value, (int, float))
    if math.isnan(value):
        raise ConfigurationError(f"{name} must be {kind}, got NaN")
    if above is not None and not value > above:
        raise ConfigurationError(f"{name} must be > {above:g}, got {value!r}")
    if at_least is not None and not value >= at_least:
        raise ConfigurationError(f"{name} must be >= {at_least:g}, got {value!r}")


def check_optional(name: str, value: object, **bounds: Any) -> None:
    """:func:`check_number` unless ``value`` is None."""
    if value is not None:
        check_number(name, value, **bounds)


def check_overrides(
    *, timeout: object = None, acquire_timeout: object = None, max_download_bytes: object = None
) -> None:
    """The numbers a client and ``with_options`` share: a timeout > 0, a slot wait >= 0, a download cap >= 1."""
    check_optional("timeout", timeout, above=0)
    check_optional("acquire_timeout", acquire_timeout, at_least=0)
    check_optional("max_download_bytes", max_download_bytes, at_least=1, integer=True)


def check_policies(retry: object, poll: object) -> None:
    """A wrong type given as a policy is refused at once, not at the first retry or poll."""
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise ConfigurationError(f"retry must be a RetryPolicy, got {type(retry).__name__}")
    if poll is not None and not isinstance(poll, PollPolicy):
        raise ConfigurationError(f"poll must be a PollPolicy, got {type(poll).__name__}")


# -- the resolved settings ---------------------------------------------------------------
@dataclass(frozen=True)
class ProviderConfig:
    """One provider's settings, resolved: key, base URL, explicit limits, provider options."""

    name: str
    key: str = field(repr=False)
    #: Where the key came from, for error messages (never the key itself).
    key_source: str
    base_url: str
    #: Limits given (argument or ``AIOFACE_<P>_LIMITS``); None: the provider's defaults / tiers.
    limits: tuple[Rate, ...] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    #: The account the key belongs to (argument or ``AIOFACE_<P>_ACCOUNT``): keys of one account
    #: share their limits, cooldown and learned tier. Never shown (it is hashed like keys).
    account: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Config:
    """Everything a :class:`~aioface.Client` is configured with, resolved once."""

    providers: Mapping[str, ProviderConfig]
    #: Where limits persist; None when they do not (``persist_limits=False``).
    state_dir: Path | None
    #: A store object, a URL / ``"local"``, or None (local); not in the repr (a URL may hold a password).
    limits_store: LimitsStore | str | None = field(repr=False)
    retry: RetryPolicy
    poll: PollPolicy
    timeout: float = DEFAULT_TIMEOUT
    acquire_timeout: float | None = None
    limit_margin: float = DEFAULT_LIMIT_MARGIN
    limit_stamp_bound: float | None = None
    time_scale: float = 1.0
    max_download_bytes: int = DEFAULT_MAX_BYTES
    connections: int = DEFAULT_CONNECTIONS
    limit_wait_notice: float = DEFAULT_LIMIT_WAIT_NOTICE


def _by_provider(
    named: Mapping[str, Any], given: Mapping[str, Any] | None, specs: Mapping[str, ProviderSpec], what: str
) -> dict[str, Any]:
    """``given`` (any provider by name) with the shorthand keyword arguments on top; unknown names refused."""
    out = {**(given or {}), **{p: v for p, v in named.items() if v is not None}}
    unknown = set(out) - set(specs)
    if unknown:
        raise ConfigurationError(f"{what} for unknown provider(s): {', '.join(sorted(unknown))}")
    return out


def _provider(
    spec: ProviderSpec,
    env: Mapping[str, str],
    key: str | None,
    url: str | None,
    limits: str | Sequence[Rate] | None,
    options: Mapping[str, Any] | None,
    account: str | None = None,
) -> ProviderConfig:
    name = spec.name
    source = f"{name} key given to Client()"
    if key is None:
        key, source = env.get(spec.key_env, ""), f"{name} key from {spec.key_env}"
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in key.strip()):
        # A header value with CR/LF would be refused at send time (or worse, inject headers).
        raise ConfigurationError(f"the {source} contains a control character (CR, LF, NUL...)")
    url = url or env.get(provider_env(name, BASE_URL)) or spec.default_base_url
    if not url.startswith(("http://", "https://")):
        raise ConfigurationError(f"{name} base URL must start with http:// or https://, got {url!r}")
    if limits is None:
        limits = env.get(provider_env(name, LIMITS)) or None
    from .limits._rate import parse_limits

    explicit = None if limits is None else (parse_limits(limits) if isinstance(limits, str) else tuple(limits))
    if account is None:
        account = env.get(provider_env(name, ACCOUNT)) or None
    if account is not None:
        if not isinstance(account, str) or not account.strip():
            raise ConfigurationError(f"the {name} account must be a non-empty label")
        account = account.strip()
    return ProviderConfig(name, key.strip(), source, url.rstrip("/"), explicit, dict(options or {}), account)


def resolve(
    specs: Mapping[str, ProviderSpec],
    env: Mapping[str, str],
    *,
    keys: Mapping[str, str] | None,
    base_urls: Mapping[str, str] | None,
    key_args: Mapping[str, str | None],
    url_args: Mapping[str, str | None],
    options: Mapping[str, Mapping[str, Any]] | None,
    limits: Mapping[str, str | Sequence[Rate]] | None,
    retry: RetryPolicy | None,
    accounts: Mapping[str, str] | None = None,
    poll: PollPolicy | None,
    state_dir: str | os.PathLike[str] | None,
    persist_limits: bool,
    limits_store: LimitsStore | str | None,
    **numbers: Any,
) -> Config:
    """The :class:`Config` of a client: its arguments (``key_args``/``url_args``: the client's
    shorthand keyword arguments, on top of ``keys``/``base_urls``) beat ``env``, which beats the
    defaults. Every check happens here, before anything is sent: a :class:`ConfigurationError`
    names the argument (never a key's value)."""
    check_number("time_scale", numbers.get("time_scale", 1.0), above=0)
    if not math.isfinite(numbers.get("time_scale", 1.0)):
        raise ConfigurationError("time_scale must be finite")
    check_overrides(
        timeout=numbers.get("timeout", DEFAULT_TIMEOUT),
        acquire_timeout=numbers.get("acquire_timeout"),
        max_download_bytes=numbers.get("max_download_bytes", DEFAULT_MAX_BYTES),
    )
    check_number("limit_margin", numbers.get("limit_margin", DEFAULT_LIMIT_MARGIN), at_least=0)
    check_optional("limit_stamp_bound", numbers.get("limit_stamp_bound"), at_least=0)
    check_number("connections", numbers.get("connections", DEFAULT_CONNECTIONS), at_least=1, integer=True)
    check_number("limit_wait_notice", numbers.get("limit_wait_notice", DEFAULT_LIMIT_WAIT_NOTICE), at_least=0)
    check_policies(retry, poll)
    key_of = _by_provider(key_args, keys, specs, "keys")
    url_of = _by_provider(url_args, base_urls, specs, "base_urls")
    opts = _by_provider({}, options, specs, "options")
    _by_provider({}, limits, specs, "limits")
    _by_provider({}, accounts, specs, "accounts")
    resolved = {
        name: _provider(
            spec,
            env,
            key_of.get(name),
            url_of.get(name),
            (limits or {}).get(name),
            opts.get(name),
            (accounts or {}).get(name),
        )
        for name, spec in specs.items()
    }
    folder: Path | None = None
    if persist_limits:
        folder = Path(state_dir) if state_dir else default_state_dir(env)
    if limits_store is None:
        limits_store = env.get(LIMITS_STORE_ENV) or None
    return Config(
        providers=resolved,
        state_dir=folder,
        limits_store=limits_store,
        retry=retry or RetryPolicy(),
        poll=poll or PollPolicy(),
        **numbers,
    )


__all__ = [
    "ACCOUNT",
    "APP_NAME",
    "BASE_URL",
    "CACHE_DIR_ENV",
    "DURATIONS_FILE",
    "ENV_PREFIX",
    "KEY",
    "LIMITS",
    "LIMITS_STORE_ENV",
    "LOG_LEVEL_ENV",
    "LOOP_ENV",
    "PERSIST_MIN_PERIOD",
    "TOKEN",
    "Config",
    "ProviderConfig",
    "check_number",
    "check_optional",
    "check_overrides",
    "check_policies",
    "default_state_dir",
    "env_prefix",
    "persisted",
    "provider_env",
    "resolve",
]
