"""The transport seam: the in-memory MockTransport (for users' fast unit tests), the aiohttp
transport's request body and body reads, and the pinned public API."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from aiohttp import web

import aioface
from aioface import _json
from aioface.transports import AiohttpTransport
from aioface.transports._base import RequestSpec
from tests.support.files import image_bytes
from tests.support.servers import serve

pytestmark = pytest.mark.anyio


async def test_mock_transport_runs_the_whole_client_without_a_network(tmp_path: Path) -> None:
    jpeg = image_bytes("JPEG", (48, 32))
    calls: list[aioface.MockRequest] = []

    def handler(request: aioface.MockRequest) -> aioface.MockResponse:
        calls.append(request)
        if "age=99" in request.url:  # never reached: refused locally
            return aioface.MockResponse(500)
        if len(calls) == 1:
            return aioface.MockResponse(429, json={"detail": "Request was throttled. Expected available in 0 seconds."})
        return aioface.MockResponse(200, content=jpeg, headers={"X-User-Class": "Professional", "X-Request-ID": "r1"})

    transport = aioface.MockTransport(handler)
    async with aioface.Client(
        facestudio_key="k-123", transport=transport, persist_limits=False, env={}, facestudio_base_url="https://fs.test"
    ) as client:
        with pytest.raises(aioface.InvalidRequestError):
            await client.facestudio.generate(tmp_path / "no", age=99)
        r = await client.facestudio.generate(tmp_path / "face", age=30)
        assert client.facestudio.tier == "professional"  # learned from X-User-Class
        assert [str(x) for x in client.limiter("facestudio").rates] == ["30/60s", "1000/86400s"]
    assert r.path is not None
    assert (r.path.name, r.width, r.height, r.request_id, r.user_class) == ("face.jpg", 48, 32, "r1", "professional")
    assert r.path.read_bytes() == jpeg
    assert len(calls) == 2  # the 429 was retried, the bad age never sent
    assert calls[1].url == "https://fs.test/v1/generate?age=30"
    assert calls[1].headers["Authorization"] == "Token k-123"
    assert "k-123" not in repr(calls[1])


async def test_mock_transport_errors_are_typed(tmp_path: Path) -> None:
    def handler(request: aioface.MockRequest) -> aioface.MockResponse:
        return aioface.MockResponse(401, json={"success": False, "error": {"code": "invalid_token", "message": "bad"}})

    async with aioface.Client(
        acedata_token="t", transport=aioface.MockTransport(handler), persist_limits=False, env={}
    ) as c:
        with pytest.raises(aioface.AuthenticationError) as err:
            await c.acedata.beautify("https://x.test/a.png", tmp_path / "b")
    assert (err.value.provider, err.value.status, err.value.code, err.value.message) == (
        "acedata",
        401,
        "invalid_token",
        "bad",
    )
    assert not any(tmp_path.iterdir())  # noqa: ASYNC240 - a test assertion


def test_public_api_is_pinned() -> None:
    """What ``import aioface`` offers (like httpx's test_exported_members): a change here is a
    change of the public API and must be deliberate."""
    assert len(aioface.__all__) == len(set(aioface.__all__))
    assert set(aioface.__all__) == {
        "TIERS", "APIError", "AILab", "AceData", "AiofaceError", "AiohttpTransport", "AuthenticationError",
        "BadRequestError", "CallbackReceiver", "Client", "ConfigurationError", "ConnectError", "DownloadError",
        "ClientClosedError",  # a client or view used when not open: was a bare RuntimeError
        "DurationLearners", "FaceAnalysis", "FaceInfo", "FaceStudio", "FanOut", "FeedError", "ImageRejectedError",
        "ImageResult",
        "Credits", "GenerationTimeoutError", "Point",  # the spec's answers (credits, key points) and Ace's 504
        "InvalidRequestError", "LimiterTimeoutError", "LimitWait", "LimitsStore", "Liveness", "LocalStore",
        "MockRequest", "MockResponse", "MockTransport", "NotFoundError", "Outcome", "PermissionDeniedError",
        "PollPolicy", "ProtocolError", "QuotaExceededError", "Rate", "RateLimitError", "RateLimiter", "RedisStore",
        "RequestTimeoutError", "RequestTiming", "RetryPolicy", "ServerError", "StorageError", "TaskError", "TaskEvent",
        "TaskFailedError", "TaskTimeoutError", "TransportError", "WaitMany", "parse_limits",
    }  # fmt: skip
    for name in aioface.__all__:
        assert getattr(getattr(aioface, name), "__module__", "aioface").startswith("aioface"), name
    assert aioface.__version__ != "0+unknown"  # from the package metadata


async def _echo(request: web.Request) -> web.Response:
    body = await request.read()
    return web.json_response({"type": request.headers.get("Content-Type"), "body": body.decode(), "pad": "x" * 2000})


async def test_aiohttp_transport_adds_the_json_content_type_without_changing_the_spec_headers() -> None:
    app = web.Application()
    app.router.add_post("/echo", _echo)
    transport = AiohttpTransport(trust_env=False)
    try:
        async with serve(app) as url:
            headers = {"accept": "application/json"}
            spec = RequestSpec("POST", f"{url}/echo", headers, json={"a": 1})
            async with transport.stream(spec, timeout=5, connect_timeout=5) as resp:
                answer = _json.loads(await resp.read())
            assert answer["type"] == "application/json" and _json.loads(answer["body"]) == {"a": 1}
            assert headers == {"accept": "application/json"}  # the spec's own headers are never changed
            spec = RequestSpec("POST", f"{url}/echo", {"Content-Type": "application/x-mine"}, json=[1])
            async with transport.stream(spec, timeout=5, connect_timeout=5) as resp:
                assert _json.loads(await resp.read())["type"] == "application/x-mine"  # theirs is kept
    finally:
        await transport.aclose()


async def test_aiohttp_transport_caps_a_body_that_came_whole_with_its_headers() -> None:
    """A small answer is in memory when its headers are: read without waiting, and the cap still holds."""
    app = web.Application()
    app.router.add_post("/echo", _echo)
    transport = AiohttpTransport(trust_env=False)
    try:
        async with serve(app) as url:
            spec = RequestSpec("POST", f"{url}/echo", {}, json={"a": 1})
            async with transport.stream(spec, timeout=5, connect_timeout=5) as resp:
                await anyio.sleep(0.05)  # the whole body is in by now
                with pytest.raises(aioface.ProtocolError, match="larger than 1000 bytes"):
                    await resp.read(cap=1000)
            async with transport.stream(spec, timeout=5, connect_timeout=5) as resp:
                await anyio.sleep(0.05)
                assert len(await resp.read(cap=3000)) > 2000
    finally:
        await transport.aclose()
