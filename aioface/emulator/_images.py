"""Real, decodable face-like images drawn with Pillow (cached: drawing is the emulator's main cost)."""

from __future__ import annotations

import functools
import io
import random

from PIL import Image, ImageDraw

_SKIN = [(255, 224, 196), (241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36), (95, 60, 30)]


@functools.lru_cache(maxsize=256)
def render(seed: int, age: int, size: int, fmt: str, hue: int = 0) -> bytes:
    """A face-like picture for ``seed`` and ``age`` as JPEG, WebP or PNG bytes."""
    rng = random.Random(seed * 1009 + hue)
    bg = tuple(rng.randrange(60, 200) for _ in range(3))
    im = Image.new("RGB", (size, size), bg)
    d = ImageDraw.Draw(im)
    s = size / 256
    skin = _SKIN[rng.randrange(len(_SKIN))]
    d.ellipse([64 * s, 40 * s, 192 * s, 216 * s], fill=skin)
    hair = (min(255, 40 + age * 2), min(255, 30 + age * 2), min(255, 20 + age * 2))
    d.pieslice([60 * s, 30 * s, 196 * s, 150 * s], 180, 360, fill=hair)
    for ex in (100, 156):
        d.ellipse([(ex - 10) * s, 110 * s, (ex + 10) * s, 124 * s], fill=(255, 255, 255))
        d.ellipse([(ex - 4) * s, 113 * s, (ex + 4) * s, 121 * s], fill=(40, 30, 20))
    for i in range(min(age // 15, 5)):
        y = (75 + 6 * i) * s
        d.line([96 * s, y, 160 * s, y], fill=(max(0, skin[0] - 40), max(0, skin[1] - 40), max(0, skin[2] - 40)))
    d.arc([104 * s, 150 * s, 152 * s, 180 * s], 20, 160, fill=(150, 40, 40), width=max(1, int(3 * s)))
    buf = io.BytesIO()
    pil_fmt = {"jpeg": "JPEG", "webp": "WEBP", "png": "PNG"}[fmt]
    kwargs = {"quality": 85} if fmt in ("jpeg", "webp") else {}
    im.save(buf, pil_fmt, **kwargs)
    return buf.getvalue()


def dimensions(data: bytes) -> tuple[int, int]:
    """(width, height) of encoded image bytes."""
    with Image.open(io.BytesIO(data)) as im:
        return im.size
