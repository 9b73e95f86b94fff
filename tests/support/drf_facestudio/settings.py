"""Django settings for the DRF Face Studio double; everything a test varies comes from the environment.

``FACESTUDIO_DRF_REDIS_URL``     Redis URL for Django's default cache (DRF's throttle history), so that
                                 gunicorn's workers share counts; unset: LocMem (per worker).
``FACESTUDIO_DRF_CACHE_PREFIX``  the cache's KEY_PREFIX (a fresh one per run keeps runs apart).
``FACESTUDIO_DRF_TIME_SCALE``    throttle periods are divided by this (default 1).
``FACESTUDIO_DRF_ACCOUNTS_FILE`` JSON account table, re-read when the file changes (see app.py).
``FACESTUDIO_DRF_ACCOUNTS``      the same table inline, used when no file is given.
``FACESTUDIO_DRF_LOG``           request log path (one JSON line per request, O_APPEND); unset: no log.
``FACESTUDIO_DRF_LATENCY``       seconds before each image answer: "0.5" or a range "1-2".
"""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured

SECRET_KEY = "aioface-drf-facestudio-test-double"  # a test server on loopback
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "tests.support.drf_facestudio.app"
INSTALLED_APPS = ["rest_framework"]
MIDDLEWARE = [
    "tests.support.drf_facestudio.app.RequestLogMiddleware",  # outermost: sees every final status
    "django.middleware.common.CommonMiddleware",  # Content-Length, as a Django deployment sends it
]
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
USE_I18N = True
LANGUAGE_CODE = "en-us"
APPEND_SLASH = False

#: Face Studio's documented tiers, written as DRF settings (burst and sustained scope per user class).
#: tests/test_drf_double.py checks them against aioface's own table.
DEFAULT_THROTTLE_RATES = {
    "anon_burst": "1/min",
    "anon_sustained": "60/day",
    "basic_burst": "5/min",
    "basic_sustained": "120/day",
    "professional_burst": "30/min",
    "professional_sustained": "1000/day",
    "enterprise_burst": "120/min",
    "enterprise_sustained": "6000/day",
}
USER_CLASSES = {"anon": "Anon", "basic": "Basic", "professional": "Professional", "enterprise": "Enterprise"}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],  # the view's own (app.py imports DRF's views: no import string)
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_THROTTLE_CLASSES": [],  # chosen per user class by the view's get_throttles()
    "DEFAULT_THROTTLE_RATES": DEFAULT_THROTTLE_RATES,
    "UNAUTHENTICATED_USER": None,  # no django.contrib.auth: an anonymous request's user is None
    "UNAUTHENTICATED_TOKEN": None,
}

TIME_SCALE = float(os.environ.get("FACESTUDIO_DRF_TIME_SCALE") or 1.0)
if TIME_SCALE <= 0:
    raise ImproperlyConfigured(f"FACESTUDIO_DRF_TIME_SCALE must be > 0, got {TIME_SCALE}")

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
REDIS_URL = os.environ.get("FACESTUDIO_DRF_REDIS_URL") or ""
CACHE_PREFIX = os.environ.get("FACESTUDIO_DRF_CACHE_PREFIX") or "facestudio"
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": CACHE_PREFIX,
        }
    }
    # Django's RedisCache keeps int(timeout) seconds and deletes a key set with a timeout under 1 s,
    # and DRF stores each history with its period as the timeout: a scaled period that is not a
    # whole number of seconds would silently forget requests still inside the window.
    for _scope, _rate in DEFAULT_THROTTLE_RATES.items():
        _scaled = _PERIODS[_rate.split("/")[1][0]] / TIME_SCALE
        if _scaled < 1 or abs(_scaled - round(_scaled)) > 1e-9:
            raise ImproperlyConfigured(
                f"with Redis, every scaled period must be a whole number of seconds: {_scope} {_rate} "
                f"/ FACESTUDIO_DRF_TIME_SCALE={TIME_SCALE} gives {_scaled} s (use a divisor of 60)"
            )
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": CACHE_PREFIX}}

ACCOUNTS_FILE = os.environ.get("FACESTUDIO_DRF_ACCOUNTS_FILE") or ""
ACCOUNTS_JSON = os.environ.get("FACESTUDIO_DRF_ACCOUNTS") or "{}"
REQUEST_LOG = os.environ.get("FACESTUDIO_DRF_LOG") or ""


def _latency(text: str) -> tuple[float, float]:
    lo, _, hi = text.partition("-")
    low = float(lo or 0)
    high = float(hi) if hi else low
    if low < 0 or high < low:
        raise ImproperlyConfigured(f"FACESTUDIO_DRF_LATENCY: want S or LO-HI seconds, got {text!r}")
    return low, high


LATENCY = _latency(os.environ.get("FACESTUDIO_DRF_LATENCY") or "0")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["stderr"], "level": "WARNING"},
    # 4xx answers are the point of this server; Django would log each one as a warning.
    "loggers": {"django.request": {"handlers": ["stderr"], "level": "ERROR", "propagate": False}},
}
