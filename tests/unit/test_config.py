"""Settings (aioface._config): arguments > environment > defaults, every name spelled once, every
number checked before anything is sent, and a closed client saying so with an aioface error."""

from __future__ import annotations

import io
import math
import tokenize
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

import aioface
from aioface import (
    Client,
    ClientClosedError,
    ConfigurationError,
    PollPolicy,
    RetryPolicy,
    _config,
)
from aioface.jobs import _budget
from tests.support.servers import JPEG, provider_app, serve

pytestmark = pytest.mark.anyio


def _env(base: str) -> dict[str, str]:
    return {_config.provider_env(p, _config.BASE_URL): base for p in ("facestudio", "acedata", "ailab")}


# -- arguments > environment > defaults ---------------------------------------------------
def test_arguments_beat_the_environment_which_beats_the_defaults(tmp_path: Path) -> None:
    env = {
        "AIOFACE_FACESTUDIO_KEY": "env-key",
        "AIOFACE_ACEDATA_TOKEN": "env-token",
        "AIOFACE_AILAB_BASE_URL": "http://ailab.env/",
        "AIOFACE_FACESTUDIO_LIMITS": "7/minute",
        "AIOFACE_LIMITS_STORE": "local",
        "AIOFACE_CACHE_DIR": str(tmp_path / "env-cache"),
    }
    c = Client(env=env)
    assert c._config.providers["facestudio"].key == "env-key"
    assert c._config.providers["acedata"].key == "env-token"
    assert c.base_urls["ailab"] == "http://ailab.env"  # env, trailing slash dropped
    assert c.base_urls["facestudio"] == aioface.providers.providers()["facestudio"].default_base_url.rstrip("/")
    assert c._config.providers["facestudio"].limits == aioface.parse_limits("7/minute")
    assert c._config.providers["ailab"].limits is None  # the provider's own
    assert c._config.state_dir == tmp_path / "env-cache"
    assert c._config.limits_store == "local"
    given = Client(
        env=env,
        facestudio_key="arg-key",
        keys={"acedata": "keys-token"},
        ailab_base_url="http://ailab.arg",
        limits={"facestudio": "3/second"},
        state_dir=tmp_path / "arg-cache",
    )
    assert given._config.providers["facestudio"].key == "arg-key"
    assert given._config.providers["acedata"].key == "keys-token"
    assert given.base_urls["ailab"] == "http://ailab.arg"
    assert given._config.providers["facestudio"].limits == aioface.parse_limits("3/second")
    assert given._config.state_dir == tmp_path / "arg-cache"
    assert Client(env=env, persist_limits=False)._config.state_dir is None
    assert "env-key" not in repr(c._config) and "arg-key" not in repr(given._config)  # keys never shown
    secret = Client(env={}, persist_limits=False, limits_store="redis://u:hunter2@127.0.0.1:1/0")
    assert "hunter2" not in repr(secret._config)


def test_the_shorthand_beats_the_mapping_and_unknown_providers_are_refused() -> None:
    c = Client(
        env={}, persist_limits=False, keys={"facestudio": "a"}, facestudio_key="b", facestudio_tier="professional"
    )
    assert c._config.providers["facestudio"].key == "b"
    with pytest.raises(ConfigurationError, match="nope"):
        Client(env={}, persist_limits=False, keys={"nope": "k"})
    with pytest.raises(ConfigurationError, match="nope"):
        Client(env={}, persist_limits=False, options={"nope": {}})


def test_the_default_state_folder_and_the_persist_threshold_are_defined_once(tmp_path: Path) -> None:
    assert _budget.default_state_dir({"AIOFACE_CACHE_DIR": str(tmp_path)}) == tmp_path
    assert _budget.default_state_dir({}) == _config.default_state_dir({})
    assert _budget.PERSISTED_FROM == _config.PERSIST_MIN_PERIOD == 3600.0
    assert _config.persisted(aioface.parse_limits("1/hour")) and not _config.persisted(
        aioface.parse_limits("59/minute")
    )
    assert aioface.providers.providers()["acedata"].key_env == _config.provider_env("acedata", _config.TOKEN)


def _spelled_names(path: Path) -> list[str]:
    """String literals (docstrings and comments aside) that spell an AIOFACE_ variable."""
    out = []
    prev = tokenize.NEWLINE
    for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        is_doc = tok.type == tokenize.STRING and prev in (tokenize.NEWLINE, tokenize.INDENT, tokenize.NL)
        if tok.type == tokenize.STRING and "AIOFACE_" in tok.string and not is_doc:
            out.append(f"{path.name}:{tok.start[0]}")
        if tok.type not in (tokenize.COMMENT, tokenize.NL):
            prev = tok.type
    return out


def test_aioface_variable_names_are_spelled_in_config_only() -> None:
    pkg = Path(aioface.__file__).parent
    offenders = [
        hit
        for path in sorted(pkg.rglob("*.py"))
        if path.name != "_config.py"
        for hit in _spelled_names(path)
    ]
    assert offenders == []
    assert _spelled_names(pkg / "_config.py")  # the check sees them where they are


# -- numbers checked up front ------------------------------------------------------------
BAD_CLIENT: list[dict[str, Any]] = [
    {"timeout": -1},
    {"timeout": 0},
    {"timeout": math.nan},
    {"timeout": "5"},
    {"acquire_timeout": -1},
    {"limit_margin": -0.1},
    {"limit_stamp_bound": -1},
    {"time_scale": 0},
    {"time_scale": math.inf},
    {"time_scale": math.nan},
    {"max_download_bytes": -1},
    {"max_download_bytes": 0},
    {"max_download_bytes": 1.5},
    {"max_download_bytes": True},
    {"connections": 0},
    {"connections": 2.5},
    {"limit_wait_notice": -1},
    {"retry": "3"},
    {"poll": 300},
]
BAD_VIEW: list[dict[str, Any]] = [
    {"timeout": -1},
    {"timeout": 0},
    {"timeout": math.nan},
    {"acquire_timeout": -0.5},
    {"max_download_bytes": -1},
    {"max_download_bytes": 0},
    {"retry": 1},
    {"poll": "fast"},
]


@pytest.mark.parametrize("kw", BAD_CLIENT, ids=[str(k) for k in BAD_CLIENT])
def test_bad_client_numbers_are_refused_at_once(kw: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match=next(iter(kw))):
        Client(env={}, persist_limits=False, **kw)


async def test_bad_view_numbers_are_refused_before_anything_is_sent(tmp_path: Path) -> None:
    """Seen: ``with_options(timeout=-1)`` sent 5 requests then timed out; ``max_download_bytes=-1``
    paid for one request. Now each is a ConfigurationError and the server hears nothing."""
    hits: Counter[str] = Counter()
    async with serve(provider_app(hits, JPEG)) as base:
        async with Client(env=_env(base), persist_limits=False, facestudio_key="k", ailab_key="k") as client:
            for kw in BAD_VIEW:
                with pytest.raises(ConfigurationError, match=next(iter(kw))):
                    await client.with_options(**kw).facestudio.generate(tmp_path / "g", age=30)
                with pytest.raises(ConfigurationError):
                    await client.with_options(**kw).download(f"{base}/img.jpg", tmp_path / "d")
            for kw in BAD_CLIENT:
                with pytest.raises(ConfigurationError):
                    Client(env=_env(base), persist_limits=False, facestudio_key="k", **kw)
            assert sum(hits.values()) == 0
            await client.facestudio.generate(tmp_path / "ok", age=30)  # the server does count
            assert sum(hits.values()) == 1


@pytest.mark.parametrize(
    "make",
    [
        lambda: RetryPolicy(max_retries=-1),
        lambda: RetryPolicy(base=math.nan),
        lambda: PollPolicy(deadline=0),
        lambda: PollPolicy(initial=math.nan),
        lambda: PollPolicy(factor=0.5),
        lambda: PollPolicy().scaled(0),
    ],
)
def test_policies_raise_configuration_errors(make: Callable[[], object]) -> None:
    with pytest.raises(ConfigurationError):
        make()


# -- a closed client ----------------------------------------------------------------------
async def test_a_closed_client_or_view_raises_an_aioface_error(tmp_path: Path) -> None:
    hits: Counter[str] = Counter()
    async with serve(provider_app(hits, JPEG)) as base:
        client = Client(env=_env(base), persist_limits=False, facestudio_key="k")
        view = client.with_options(timeout=5)
        with pytest.raises(ClientClosedError, match="async with"):  # not opened yet
            await view.facestudio.generate(tmp_path / "a", age=30)
        async with client:
            await view.facestudio.generate(tmp_path / "b", age=30)
        for used in (client, view):
            with pytest.raises(ClientClosedError, match="closed") as ei:
                await used.facestudio.generate(tmp_path / "c", age=30)
            assert isinstance(ei.value, aioface.AiofaceError) and isinstance(ei.value, RuntimeError)
            with pytest.raises(ClientClosedError):
                await used.download(f"{base}/img.jpg", tmp_path / "d")

            def generate(d: Path, u: Client = used) -> Awaitable[aioface.ImageResult]:
                return u.facestudio.generate(d, age=30)

            outs = await used.map(generate, [tmp_path / "e"])
            assert isinstance(outs[0].error, ClientClosedError)
        assert hits["/v1/generate"] == 1
