"""Bad URLs and callback bodies: a typed InvalidRequestError before anything is sent (and billed)."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

import aioface
from aioface import InvalidRequestError
from aioface._net import check_http_url
from tests.support.servers import JPEG, ToLoopback, provider_app, serve

pytestmark = pytest.mark.anyio

BAD_URLS = [
    "http://[::1/x",  # an unclosed IPv6 bracket
    "http://img.example:99999/a.png",  # a port out of range
    "http://img.example:8o8o/a.png",  # a port that is not a number
    "http://img.example:0/a.png",  # a port nobody listens on
    "http://img.example/a\x00.png",  # a NUL
    "http://img.example/a\r\nX-Injected: 1",  # a header injection attempt
    "http://img..example/a.png",  # an empty label
]

JPEG_URL = "https://img.example/a.png"


def fullwidth(text: str) -> str:
    """``text`` in fullwidth forms (U+FF01..U+FF5E), which NFKC maps back to ``text``."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


LOCAL_BY_ANOTHER_NAME = [
    f"http://{fullwidth('localhost')}:8080/cb",  # fullwidth letters
    "http://LOCALHOST:8080/cb",
    f"http://{fullwidth('127')}.{fullwidth('0')}.0.{fullwidth('1')}:8080/cb",  # fullwidth digits
    "http://localhost\u3002/cb",  # an ideographic full stop
    f"http://{fullwidth('localhost.')}/cb",  # a fullwidth full stop
]


@pytest.fixture
async def far() -> AsyncIterator[tuple[aioface.Client, Counter[str]]]:
    """A client whose providers look far away (public names), all served by one counting test server."""
    hits: Counter[str] = Counter()
    async with serve(provider_app(hits, JPEG)) as local:
        port = local.rsplit(":", 1)[1]
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=ToLoopback()))
        try:
            base = f"http://api.provider.example:{port}"
            async with aioface.Client(
                facestudio_key="k",
                acedata_token="t",
                ailab_key="a",
                base_urls={"facestudio": base, "acedata": base, "ailab": base},
                transport=aioface.AiohttpTransport(session),
                env={},
                persist_limits=False,
                limits={"facestudio": "1000/s", "acedata": "1000/s", "ailab": "1000/s"},
            ) as c:
                yield c, hits
        finally:
            await session.close()


@pytest.mark.parametrize("url", BAD_URLS)
async def test_a_bad_image_url_is_refused_before_sending(far: tuple[aioface.Client, Counter[str]], url: str) -> None:
    c, hits = far
    with pytest.raises(InvalidRequestError, match="image_url"):
        await c.acedata.change_age(url, [60], None)
    with pytest.raises(InvalidRequestError, match="source"):
        await c.ailab.swap(None, source=url, target=JPEG)
    assert sum(hits.values()) == 0


@pytest.mark.parametrize("timeout", [-1, 0, -0.5, float("inf"), float("nan"), "60", True])
async def test_an_ace_swap_timeout_that_is_no_positive_number_is_refused_before_sending(
    far: tuple[aioface.Client, Counter[str]], timeout: object
) -> None:
    c, hits = far
    ok = "https://cdn.example/a.png"
    for sync in (False, True):
        with pytest.raises(InvalidRequestError, match="timeout"):
            await c.acedata.swap(None, source=ok, target=ok, timeout=timeout, sync=sync)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError, match="timeout"):
        await c.acedata.submit_swap(source=ok, target=ok, timeout=timeout, callback_url=ok)  # type: ignore[arg-type]
    assert sum(hits.values()) == 0


@pytest.mark.parametrize("url", BAD_URLS)
async def test_a_bad_callback_url_is_refused_before_sending(far: tuple[aioface.Client, Counter[str]], url: str) -> None:
    c, hits = far
    ok = "https://cdn.example/a.png"
    with pytest.raises(InvalidRequestError):
        await c.acedata.submit_swap(source=ok, target=ok, callback_url=url)
    assert sum(hits.values()) == 0


@pytest.mark.parametrize("url", BAD_URLS)
async def test_a_bad_download_url_is_refused_before_sending(
    far: tuple[aioface.Client, Counter[str]], url: str, tmp_path: Path
) -> None:
    c, hits = far
    with pytest.raises(InvalidRequestError):
        await c.download(url, tmp_path / "x")
    assert sum(hits.values()) == 0 and not (tmp_path / "x").exists()


@pytest.mark.parametrize("url", LOCAL_BY_ANOTHER_NAME)
async def test_localhost_by_another_spelling_is_still_only_this_machine(
    far: tuple[aioface.Client, Counter[str]], url: str
) -> None:
    c, hits = far
    ok = "https://cdn.example/a.png"
    with pytest.raises(InvalidRequestError, match="only reachable from this machine"):
        await c.acedata.submit_swap(source=ok, target=ok, callback_url=url)
    assert sum(hits.values()) == 0


@pytest.mark.parametrize("body", ['{"task_id": "\ud800"}', "\udcff"])
def test_a_callback_body_that_is_not_text_is_an_invalid_request(body: str) -> None:
    with pytest.raises(InvalidRequestError, match="body"):
        aioface.AceData.unwrap_callback(body)


def test_the_url_checks_themselves() -> None:
    from aioface._net import check_http_url, is_local_url

    for url in BAD_URLS:
        with pytest.raises(InvalidRequestError):
            check_http_url(url)
        with pytest.raises(InvalidRequestError):
            is_local_url(url)
    for url in LOCAL_BY_ANOTHER_NAME:
        assert is_local_url(url), url
    for url in ("https://example.com/a", "https://bücher.example/x", "http://[2001:db8::1]:8080/a", "http://h:65535/"):
        assert check_http_url(url) == url and not is_local_url(url)


@pytest.mark.parametrize("url", BAD_URLS[:3])
async def test_every_ace_image_operation_refuses_a_bad_image_url_with_the_checks_own_error(
    far: tuple[aioface.Client, Counter[str]], url: str
) -> None:
    """The URL is checked once now (by the body's builder): the same error as the check itself,
    before the other parameters' (given wrong too), and nothing sent."""
    c, hits = far
    with pytest.raises(InvalidRequestError) as expected:
        check_http_url(url, param="image_url")
    ops: dict[str, Callable[[str], Awaitable[object]]] = {
        "change_age": lambda u: c.acedata.change_age(u, ["old"], None, download=False),  # type: ignore[list-item]
        "change_gender": lambda u: c.acedata.change_gender(u, [7], None, download=False),
        "beautify": lambda u: c.acedata.beautify(u, None, smoothing="x", download=False),  # type: ignore[arg-type]
        "cartoon": lambda u: c.acedata.cartoon(u, None, download=False),
        "analyze": lambda u: c.acedata.analyze(u, mode="x"),  # type: ignore[arg-type]
        "detect_live": lambda u: c.acedata.detect_live(u, face_model_version=[1]),  # type: ignore[arg-type]
    }
    for name, op in ops.items():
        with pytest.raises(InvalidRequestError) as got:
            await op(url)
        assert (str(got.value), got.value.param) == (str(expected.value), "image_url"), name
        if name != "cartoon":  # (no other parameter) a good URL: the other parameter's error
            with pytest.raises(InvalidRequestError) as other:
                await op(JPEG_URL)
            assert other.value.param != "image_url", name
    assert sum(hits.values()) == 0
