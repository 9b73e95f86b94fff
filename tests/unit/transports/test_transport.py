"""The transport seam: the in-memory MockTransport (for users' fast unit tests) and the pinned
public API."""

from __future__ import annotations

from pathlib import Path

import pytest

import aioface
from tests.support.files import image_bytes

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
