"""The double itself: URLs, the view, DRF throttles per user class, token auth over a table, request log.

The account table (JSON)::

    {"acme": {"user_class": "Basic", "keys": ["key-a1", "key-a2"]},
     "beta": {"user_class": "Professional", "keys": ["key-b1"]}}

Several keys may belong to one account; DRF's user throttles count per ``request.user.pk`` (the
account), so the keys of one account share its budget. The file is re-read when it changes, so a
test can move an account to another class between (or during) runs; the new class has its own
throttle scopes, hence fresh counts, as in DRF.
"""

from __future__ import annotations

import io
import json
import os
import random
import time
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from PIL import Image, ImageDraw
from rest_framework import exceptions, serializers
from rest_framework.authentication import TokenAuthentication
from rest_framework.request import Request
from rest_framework.throttling import AnonRateThrottle, BaseThrottle, SimpleRateThrottle, UserRateThrottle
from rest_framework.views import APIView


# ------------------------------------------------------------------ accounts and authentication
class Account:
    """What DRF needs of a user: ``pk`` (the throttles' ident) and ``is_authenticated``."""

    is_authenticated = True
    is_active = True

    def __init__(self, pk: str, user_class: str) -> None:
        self.pk = pk
        self.user_class = user_class


_table: tuple[object, dict[str, Account]] | None = None


def _parse_table(data: dict[str, Any]) -> dict[str, Account]:
    by_key: dict[str, Account] = {}
    for name, spec in data.items():
        user_class = str(spec["user_class"]).lower()
        if user_class not in settings.USER_CLASSES or user_class == "anon":
            raise ValueError(f"account {name!r}: unknown user class {spec['user_class']!r}")
        for key in spec["keys"]:
            by_key[key] = Account(name, user_class)
    return by_key


def accounts_by_key() -> dict[str, Account]:
    """The table, re-read whenever the file's identity, size or mtime changes."""
    global _table
    if settings.ACCOUNTS_FILE:
        st = os.stat(settings.ACCOUNTS_FILE)
        stamp: object = (st.st_ino, st.st_size, st.st_mtime_ns)
        if _table is None or _table[0] != stamp:
            with open(settings.ACCOUNTS_FILE, encoding="utf-8") as f:
                _table = (stamp, _parse_table(json.load(f)))
    elif _table is None:
        _table = ("env", _parse_table(json.loads(settings.ACCOUNTS_JSON)))
    return _table[1]


class TableTokenAuthentication(TokenAuthentication):
    """DRF's TokenAuthentication (header parsing, errors, ``WWW-Authenticate: Token``); keys from the table."""

    def authenticate_credentials(self, key: str) -> tuple[Account, str]:
        account = accounts_by_key().get(key)
        if account is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        return account, key


# ------------------------------------------------------------------ throttles
def _scaled(base: type[SimpleRateThrottle], scope: str) -> type[SimpleRateThrottle]:
    """DRF's throttle class ``base`` with ``scope``; only parse_rate differs: periods / TIME_SCALE."""

    def parse_rate(self: SimpleRateThrottle, rate: str | None) -> tuple[int | None, float | None]:
        num, duration = base.parse_rate(self, rate)
        return num, (None if duration is None else duration / settings.TIME_SCALE)

    name = "".join(part.title() for part in scope.split("_")) + base.__name__
    return type(name, (base,), {"scope": scope, "parse_rate": parse_rate})


#: Per user class, DRF throttles for its burst and sustained scopes: a request is checked against both.
THROTTLES: dict[str, tuple[type[SimpleRateThrottle], ...]] = {
    user_class: tuple(
        _scaled(AnonRateThrottle if user_class == "anon" else UserRateThrottle, f"{user_class}_{window}")
        for window in ("burst", "sustained")
    )
    for user_class in settings.USER_CLASSES
}


# ------------------------------------------------------------------ the view
def _image(fmt: str) -> bytes:
    img = Image.new("RGB", (64, 64), (236, 200, 170))
    draw = ImageDraw.Draw(img)
    draw.ellipse((16, 10, 48, 54), fill=(210, 160, 130))
    draw.ellipse((24, 24, 28, 28), fill=(40, 30, 20))
    draw.ellipse((36, 24, 40, 28), fill=(40, 30, 20))
    draw.arc((24, 34, 40, 46), 20, 160, fill=(120, 40, 40), width=2)
    buf = io.BytesIO()
    img.save(buf, fmt.upper())
    return buf.getvalue()


IMAGES = {fmt: _image(fmt) for fmt in ("jpeg", "webp")}  # made once per worker, at import


class GenerateParams(serializers.Serializer):
    """Only the parameter that changes the answer's type; DRF's own 400 text if it is bad."""

    image_format = serializers.ChoiceField(choices=sorted(IMAGES), required=False, default="jpeg")


class Generate(APIView):
    authentication_classes = (TableTokenAuthentication,)

    def get_throttles(self) -> list[BaseThrottle]:
        user = self.request.user
        return [cls() for cls in THROTTLES[user.user_class if user is not None else "anon"]]

    def get(self, request: Request) -> HttpResponse:
        user_class = settings.USER_CLASSES[request.user.user_class if request.user is not None else "anon"]
        params = GenerateParams(data=request.query_params)
        if not params.is_valid():
            return JsonResponse(params.errors, status=400, headers={"X-User-Class": user_class})
        low, high = settings.LATENCY
        if high > 0:
            time.sleep(random.uniform(low, high))
        fmt = params.validated_data["image_format"]
        return HttpResponse(IMAGES[fmt], content_type=f"image/{fmt}", headers={"X-User-Class": user_class})


def ready(request: HttpRequest) -> JsonResponse:
    """Not throttled, not logged: the helper's readiness probe."""
    return JsonResponse({"pid": os.getpid()})


urlpatterns = [path("v1/generate", Generate.as_view()), path("-/ready", ready)]


# ------------------------------------------------------------------ request log
def log_line(entry: dict[str, Any]) -> None:
    """Append one JSON line to the request log with a single O_APPEND write (workers share the file)."""
    if not settings.REQUEST_LOG:
        return
    data = (json.dumps(entry, separators=(",", ":")) + "\n").encode()
    fd = os.open(settings.REQUEST_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


class RequestLogMiddleware:
    """Logs every /v1/generate request: server time on arrival, key, account, class, status, worker pid."""

    def __init__(self, get_response: Any) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path != "/v1/generate":
            return self.get_response(request)
        t = time.time()
        response = self.get_response(request)
        parts = request.headers.get("Authorization", "").split()
        user = getattr(request, "user", None)  # DRF sets the Django request's user too
        log_line(
            {
                "event": "request",
                "t": t,
                "t_end": time.time(),
                "pid": os.getpid(),
                "key": parts[1] if len(parts) == 2 and parts[0].lower() == "token" else None,
                "account": getattr(user, "pk", None),
                "user_class": settings.USER_CLASSES[user.user_class] if user is not None else None if parts else "Anon",
                "status": response.status_code,
                "retry_after": response.get("Retry-After"),
            }
        )
        return response
