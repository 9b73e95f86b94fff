"""Adapters are pure: golden inputs in, typed results or errors out, no event loop."""

from __future__ import annotations

import pytest

from aioface import (
    AuthenticationError,
    BadRequestError,
    ImageRejectedError,
    InvalidRequestError,
    ProtocolError,
    QuotaExceededError,
    RateLimitError,
    ServerError,
)
from aioface.providers.acedata import _adapter as acedata
from aioface.providers.ailab import _adapter as ailab
from aioface.providers.facestudio import _adapter as facestudio
from tests.support.files import image_bytes


def test_facestudio_params_are_converted() -> None:
    p = facestudio.build_params(
        gender="female", age=0, resolution=1024, image_format="webp", seed=2**32, stampless=True, view_profile=-60
    )
    assert p == {
        "gender": "female",
        "age": "0",
        "resolution": "1024",
        "image_format": "webp",
        "seed": "4294967296",
        "stampless": "yes",
        "view_profile": "-60",
    }


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"age": 81}, "age"),
        ({"age": -1}, "age"),
        ({"age": "30"}, "age"),
        ({"age": True}, "age"),
        ({"resolution": 127}, "resolution"),
        ({"resolution": 1025}, "resolution"),
        ({"gender": "other"}, "gender"),
        ({"ethnicity": "martian"}, "ethnicity"),
        ({"image_format": "png"}, "image_format"),
        ({"seed": 0}, "seed"),
        ({"seed": 2**32 + 1}, "seed"),
        ({"skintone": 11}, "skintone"),
        ({"eyewear": "monocle"}, "eyewear"),
        ({"hair_length": -1}, "hair_length"),
        ({"facial_hair": 11}, "facial_hair"),
        ({"lighting": "neon"}, "lighting"),
        ({"zoom_level": "far"}, "zoom_level"),
        ({"stampless": "maybe"}, "stampless"),
        ({"mood": "angry"}, "mood"),
        ({"view_profile": 61}, "view_profile"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_facestudio_bad_params_name_the_parameter(kwargs: dict[str, object], param: str) -> None:
    with pytest.raises(InvalidRequestError) as ei:
        facestudio.build_params(**kwargs)
    assert ei.value.param == param
    assert param in str(ei.value)


def test_facestudio_request_auth_and_anonymous() -> None:
    spec = facestudio.build_request("https://facestud.io/", "sekrit", {"age": "3"}, None)
    assert spec.url == "https://facestud.io/v1/generate"
    assert spec.headers["Authorization"] == "Token sekrit"
    assert "sekrit" not in repr(spec)
    assert "Authorization" not in facestudio.build_request("https://x", None, {}, None).headers


def test_facestudio_errors() -> None:
    e = facestudio.parse_error(429, {}, b'{"detail": "Request was throttled. Expected available in 25 seconds."}')
    assert isinstance(e, RateLimitError) and e.retry_after == 25.0 and e.code == "throttled"
    e = facestudio.parse_error(429, {"Retry-After": "3"}, b'{"detail": "slow down"}')
    assert e.retry_after == 3.0
    e = facestudio.parse_error(401, {}, b'{"detail": "Invalid token."}')
    assert isinstance(e, AuthenticationError) and e.message == "Invalid token."
    e = facestudio.parse_error(400, {}, b'{"age": ["Ensure this value is less than or equal to 80."]}')
    assert isinstance(e, BadRequestError) and "age: Ensure" in e.message
    assert facestudio.user_class({"x-user-class": "Professional"}) == "professional"


def test_acedata_bodies() -> None:
    assert acedata.change_age_body("https://a/b.png", [60, 20]) == {
        "image_url": "https://a/b.png",
        "age_infos": [{"age": 60}, {"age": 20}],
    }
    with pytest.raises(InvalidRequestError, match="ages"):
        acedata.change_age_body("https://a/b.png", [])
    with pytest.raises(InvalidRequestError, match="ages"):
        acedata.change_age_body("https://a/b.png", ["60"])  # type: ignore[list-item]
    # Only the documented rules: any number of faces, any integer age (the provider judges those).
    assert len(acedata.change_age_body("https://a/b.png", [9] * 11)["age_infos"]) == 11
    assert acedata.swap_body("https://a/s.png", "https://a/t.png", 900)["timeout"] == 900
    with pytest.raises(InvalidRequestError, match="image_url"):
        acedata.change_age_body("file:///etc/passwd", [30])
    with pytest.raises(InvalidRequestError, match="genders"):
        acedata.change_gender_body("https://a/b.png", [2])
    body = acedata.swap_body("https://a/s.png", "http://a/t.png", 60, "https://me/cb")
    assert body == {
        "source_image_url": "https://a/s.png",
        "target_image_url": "http://a/t.png",
        "timeout": 60,
        "callback_url": "https://me/cb",
    }
    with pytest.raises(InvalidRequestError, match="source_url"):
        acedata.swap_body("ftp://a/s.png", "https://a/t.png")
    spec = acedata.build_request("https://api.acedata.cloud", "tok", "swap", body, None)
    assert spec.idempotent is False and spec.headers["authorization"] == "Bearer tok"


def test_acedata_error_envelope_object_and_string() -> None:
    body = b'{"success": false, "error": {"code": "api_error", "message": "fetch failed"}, "trace_id": "2cf8"}'
    e = acedata.parse_error(500, {}, body)
    assert isinstance(e, ServerError)
    assert (e.code, e.message, e.request_id) == ("api_error", "fetch failed", "2cf8")
    e = acedata.parse_error(401, {}, b'{"success": false, "error": {"code": "invalid_token", "message": "no"}}')
    assert isinstance(e, AuthenticationError)
    e = acedata.parse_error(400, {}, b'{"success": false, "error": "bad things", "trace_id": "t"}')
    assert isinstance(e, BadRequestError) and e.message == "bad things" and e.request_id == "t"
    e = acedata.parse_error(502, {}, b"<html>bad gateway</html>")
    assert isinstance(e, ServerError)
    with pytest.raises(ServerError):
        acedata.parse_result(200, {}, b'{"success": false, "error": {"code": "api_error", "message": "m"}}')
    with pytest.raises(ProtocolError):
        acedata.parse_result(200, {}, b"[1]")
    assert acedata.parse_result(200, {}, b'{"image_url": "https://x/y.png"}') == {"image_url": "https://x/y.png"}


def test_ailab_errors_and_quota() -> None:
    e = ailab.parse_error(
        429,
        {},
        b'{"request_id": "r1", "error_code": 429, "error_msg": "not enough credits",'
        b' "error_detail": {"status_code": 429, "code": "ERROR_NOT_ENOUGH_CREDITS"}}',
    )
    assert isinstance(e, QuotaExceededError) and e.request_id == "r1"
    e = ailab.parse_error(
        429, {}, b'{"error_code": 429, "error_detail": {"status_code": 429, "code": "EXCEEDING_LIMITS"}}'
    )
    assert isinstance(e, RateLimitError) and not isinstance(e, QuotaExceededError)
    with pytest.raises(AuthenticationError):
        ailab.parse_result(
            200, {}, b'{"error_code": 401, "error_msg": "bad key", "error_detail": {"status_code": 401, "code": "K"}}'
        )


def test_ailab_task_states() -> None:
    assert ailab.task_state({"task_status": 1}) == (1, None)
    assert ailab.task_state({"task_status": 2, "data": {"image": "https://x/1.jpg"}}) == (2, "https://x/1.jpg")
    with pytest.raises(ProtocolError):
        ailab.task_state({"task_status": 2, "data": {}})
    assert ailab.task_state({}) == (None, None)  # no status: unknown, polled on (issue 20, as the SDK does)


def test_ailab_image_checks() -> None:
    ok = ailab.check_image(image_bytes("PNG"), "target")
    assert ok.content_type == "image/png" and (ok.width, ok.height) == (64, 64)
    with pytest.raises(ImageRejectedError) as ei:
        ailab.check_image(image_bytes("GIF"), "target")
    assert ei.value.rule == "format" and ei.value.param == "target"
    with pytest.raises(ImageRejectedError) as ei:
        ailab.check_image(b"not an image at all", "template")
    assert ei.value.rule == "format"
    with pytest.raises(ImageRejectedError) as ei:
        ailab.check_image(image_bytes("PNG", (4096, 8)), "target")
    assert ei.value.rule == "dimensions"
    assert ailab.check_image(image_bytes("PNG", (4095, 8)), "target").width == 4095
    with pytest.raises(ImageRejectedError) as ei:
        ailab.check_image(b"\xff\xd8\xff" + bytes(5 * 1024 * 1024), "target")
    assert ei.value.rule == "max_bytes"


@pytest.mark.parametrize("body", [b"[1, 2]", b'"done"', b"null"])
def test_json_that_is_not_an_object_is_a_protocol_error_naming_the_provider(body: bytes) -> None:
    with pytest.raises(ProtocolError, match=r"acedata .* where an object was expected"):
        acedata.parse_result(200, {}, body)
    with pytest.raises(ProtocolError, match=r"ailab .* where an object was expected"):
        ailab.parse_result(200, {}, body)
    with pytest.raises(ProtocolError, match=r"acedata .* where a task was expected"):
        acedata.parse_task(200, {}, body)
