"""The emulator's Face Studio: ``GET /v1/generate``, DRF token auth, tiers, DRF throttling.

Its parameter table and tiers are written out again here on purpose, not imported from the
client: the emulator is an independent check of the client's reading of the docs.
"""

from __future__ import annotations

import math
from typing import Any

from aiohttp import web

from ._common import STATE, json_response, mount
from ._images import render

FS_CHOICES = {
    "gender": ("male", "female"),
    "ethnicity": (
        "european",
        "african",
        "west_asian",
        "south_asian",
        "east_asian",
        "southeast_asian",
        "latin_american",
    ),
    "image_format": ("jpeg", "webp"),
    "eyewear": ("auto", "none", "eyeglasses", "sunglasses"),
    "lighting": ("auto", "studio", "natural", "artistic"),
    "zoom_level": ("standard", "closeup"),
    "stampless": ("yes", "no"),
    "mood": ("auto", "joyous", "composed"),
}
FS_INTS = {
    "age": (0, 80),
    "resolution": (128, 1024),
    "seed": (1, 2**32),
    "skintone": (0, 10),
    "hair_length": (0, 10),
    "facial_hair": (0, 10),
    "view_profile": (-60, 60),
}
FS_ADVANCED = {
    "seed",
    "skintone",
    "eyewear",
    "hair_length",
    "facial_hair",
    "lighting",
    "zoom_level",
    "stampless",
    "mood",
    "view_profile",
}

TIER_NAMES = {"anon": "Anon", "basic": "Basic", "professional": "Professional", "enterprise": "Enterprise"}
TIER_LIMITS = {
    "anon": ((1, 60.0), (60, 86400.0)),
    "basic": ((5, 60.0), (120, 86400.0)),
    "professional": ((30, 60.0), (1000, 86400.0)),
    "enterprise": ((120, 60.0), (6000, 86400.0)),
}


def _fs_detail(detail: str, status: int, headers: dict[str, str] | None = None) -> web.Response:
    return json_response({"detail": detail}, status, headers)


async def facestudio_generate(request: web.Request) -> web.StreamResponse:
    st = request.app[STATE]
    cfg = st.config
    st.stats["facestudio_requests"] += 1
    auth = request.headers.get("Authorization", "")
    key: str | None = None
    parts = auth.split()
    if parts and parts[0].lower() == "token":  # DRF TokenAuthentication ignores other schemes
        if len(parts) == 1:
            return _fs_detail("Invalid token header. No credentials provided.", 401)
        if len(parts) > 2:
            return _fs_detail("Invalid token header. Token string should not contain spaces.", 401)
        key = parts[1]
        if cfg.strict and key not in cfg.keys:
            return _fs_detail("Invalid token.", 401)
    tier = "anon" if key is None else cfg.keys.get(key, cfg.default_tier)
    ident = key if key is not None else (request.remote or "anon")
    wait = st.throttle("facestudio", ident, TIER_LIMITS[tier])
    if wait is not None:
        secs = math.ceil(wait)
        unit = "second" if secs == 1 else "seconds"
        return _fs_detail(
            f"Request was throttled. Expected available in {secs} {unit}.", 429, {"Retry-After": str(secs)}
        )
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    for name, raw in request.query.items():
        if name in FS_CHOICES:
            if raw not in FS_CHOICES[name]:
                errors[name] = [f'"{raw}" is not a valid choice.']
            values[name] = raw
        elif name in FS_INTS:
            lo, hi = FS_INTS[name]
            try:
                v = int(raw)
            except ValueError:
                errors[name] = ["A valid integer is required."]
                continue
            if v < lo:
                errors[name] = [f"Ensure this value is greater than or equal to {lo}."]
            elif v > hi:
                errors[name] = [f"Ensure this value is less than or equal to {hi}."]
            values[name] = v
    if errors:
        return json_response(errors, 400, {"X-User-Class": TIER_NAMES[tier]})
    adv = sorted(FS_ADVANCED & set(values))
    if adv and tier not in ("professional", "enterprise"):
        return _fs_detail(f"Parameter '{adv[0]}' requires the Professional plan or higher.", 403)
    await st.latency()
    seed = values.get("seed") or st.rng.randrange(1, 64)
    age = values.get("age", st.rng.randrange(0, 81))
    data = render(int(seed) % 4096, int(age), int(values.get("resolution", 1024)), values.get("image_format", "jpeg"))
    st.stats["facestudio_images"] += 1
    return web.Response(
        body=data,
        content_type=f"image/{values.get('image_format', 'jpeg')}",
        headers={"X-User-Class": TIER_NAMES[tier]},
    )


def fault(status: int) -> web.Response:
    if status == 429:
        return _fs_detail("Request was throttled. Expected available in 1 second.", 429, {"Retry-After": "1"})
    return _fs_detail("A server error occurred.", status)


def setup(app: web.Application) -> None:
    """Mount Face Studio's routes."""
    mount(app, "facestudio", "/v1/", fault)
    app.router.add_get("/v1/generate", facestudio_generate)
