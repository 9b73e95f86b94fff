"""Face Studio's public methods (``client.facestudio``): generate a face to a file."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from ..._errors import InvalidRequestError
from ..._types import ImageResult
from ...limits import Rate
from ...results._dest import Dest, prepare_dest
from .._base import ProviderContext, ProviderNamespace
from . import _adapter as _fs


class FaceStudio(ProviderNamespace):
    """Face Studio: ``generate`` one face to a file. Reached as ``client.facestudio``."""

    def __init__(self, ctx: ProviderContext) -> None:
        super().__init__(ctx)
        #: The class the last answer's ``X-User-Class`` named (lower-case), or None.
        self.user_class: str | None = None
        tier = ctx.options.get("tier")
        if tier is not None and str(tier).lower() not in _fs.TIERS:
            from ..._errors import ConfigurationError

            raise ConfigurationError(f"facestudio_tier must be one of {', '.join(_fs.TIERS)}")
        self._given_tier: str | None = str(tier).lower() if tier else None
        #: The tier an earlier client learned for this key (read once, when first needed), or None.
        self._remembered: str | None = None
        self._recalled = False
        #: Whether an answer confirmed the remembered tier within its shortest window (this process
        #: or another, through the shared store); and when this process last said so (wall clock).
        self._confirmed = False
        self._told_at = 0.0

    # -- tiers ------------------------------------------------------------------------------
    @property
    def tier(self) -> str:
        """The tier whose limits are in force: given, learned from X-User-Class, remembered from an
        earlier run with this key, or assumed (Basic with a key, Anon without)."""
        if self._given_tier or self.user_class:
            return self._given_tier or self.user_class or ""
        self._recall()
        return self._remembered or ("basic" if self._ctx.has_key else "anon")

    def _recall(self, *, again: bool = False) -> None:
        """Read the tier an earlier client learned for this key (only while none is known; once, or
        ``again`` when the limiter is made: a shared store may have been opened since)."""
        if (again or not self._recalled) and self.rates_assumed():
            self._recalled = True
            meta = self._ctx.load_meta()
            kept = meta.get("tier")
            self._remembered = kept if kept in _fs.TIERS else None
            self._confirmed = self._remembered is not None and self._fresh(meta.get("confirmed"), self._remembered)

    def _burst(self) -> float:
        """The shortest window of the tier in force, in seconds of this client's (scaled) clock."""
        return _fs.TIERS[self.tier][0].period / self._ctx.settings.time_scale

    def _fresh(self, confirmed: str | None, tier: str) -> bool:
        """Whether an answer confirmed ``tier`` within its current (shortest) window."""
        try:
            age = time.time() - float(confirmed or "")
        except ValueError:
            return False
        return -1.0 <= age <= _fs.TIERS[tier][0].period / self._ctx.settings.time_scale

    def shared_facts(self, facts: Mapping[str, str]) -> None:
        """While probing: a tier another process confirmed within its window is taken at once."""
        tier = facts.get("tier")
        if self.rates_assumed() and tier in _fs.TIERS and self._fresh(facts.get("confirmed"), tier):
            self._remembered, self._confirmed = tier, True
            self._ctx.apply_rates(_fs.TIERS[tier])

    def initial_rates(self) -> tuple[tuple[Rate, ...], bool]:
        self._recall(again=True)
        return _fs.TIERS[self.tier], False

    def rates_assumed(self) -> bool:
        # Without a key the tier is Anon; with one, only an answer's X-User-Class tells (or one
        # another process confirmed in the shared store within the current window).
        return self._given_tier is None and self.user_class is None and self._ctx.has_key and not self._confirmed

    def tier_label(self) -> str:
        return self.tier.capitalize()

    def on_headers(self, headers: Mapping[str, str]) -> None:
        cls = _fs.user_class(headers)
        if not cls:
            return
        now = time.time()
        if cls == self.user_class:
            if self._ctx.has_key and cls in _fs.TIERS and now - self._told_at > self._burst() / 2:
                self._told_at = now  # still so: other processes starting now need not probe
                self._ctx.save_meta(tier=cls, confirmed=f"{now:.3f}")
            return
        self.user_class = cls
        if cls in _fs.TIERS:
            if self._ctx.has_key:  # the next run starts from it, other processes trust it for a window
                self._told_at = now
                self._ctx.save_meta(tier=cls, confirmed=f"{now:.3f}")
            if self._given_tier is None:
                self._ctx.apply_rates(_fs.TIERS[cls])

    def _check_tier(self, params: Mapping[str, str]) -> None:
        """Refuse advanced parameters locally once the tier is known to lack them."""
        known = self._given_tier or self.user_class or (None if self._ctx.has_key else "anon")
        adv = _fs.advanced_used(params)
        if adv and known is not None and known not in _fs.ADVANCED_CLASSES:
            verb = "needs" if len(adv) == 1 else "need"
            raise InvalidRequestError(
                f"{', '.join(adv)} {verb} the Professional tier or above; this key is {known.capitalize()}"
                + ("" if self._ctx.has_key else f" (no key: set {self._ctx.spec.key_env})"),
                param=adv[0],
            )

    def check(self, params: Mapping[str, Any]) -> None:
        """Every local check ``generate`` makes, without sending (InvalidRequestError)."""
        self._check_tier(_fs.build_params(**params))

    # -- calls ------------------------------------------------------------------------------
    async def generate(
        self,
        dest: Dest = None,
        *,
        gender: str | None = None,
        ethnicity: str | None = None,
        age: int | None = None,
        resolution: int | None = None,
        image_format: str | None = None,
        seed: int | None = None,
        skintone: int | None = None,
        eyewear: str | None = None,
        hair_length: int | str | None = None,
        facial_hair: int | str | None = None,
        lighting: str | None = None,
        zoom_level: str | None = None,
        stampless: str | bool | None = None,
        mood: str | None = None,
        view_profile: int | None = None,
    ) -> ImageResult:
        """Generate a face and stream it to ``dest`` (a suffix is added when ``dest`` has none).

        ``dest`` may also be a folder (the file is named after the request id), None (the image
        stays in memory as ``result.data``) or a writable binary file object / async sink.

        Every parameter is checked before sending; advanced ones (seed, skintone, ...) raise
        :class:`InvalidRequestError` when the tier is known to lack them.
        """
        params = _fs.build_params(
            gender=gender,
            ethnicity=ethnicity,
            age=age,
            resolution=resolution,
            image_format=image_format,
            seed=seed,
            skintone=skintone,
            eyewear=eyewear,
            hair_length=hair_length,
            facial_hair=facial_hair,
            lighting=lighting,
            zoom_level=zoom_level,
            stampless=stampless,
            mood=mood,
            view_profile=view_profile,
        )
        ctx = self._ctx
        self._check_tier(params)
        spec = _fs.build_request(ctx.base_url, ctx.key(required=False), params, ctx.settings.timeout)
        target = prepare_dest(dest, params.get("image_format", "jpeg"))  # one look at the disk

        def fields(headers: Mapping[str, str]) -> dict[str, str | None]:
            return {"request_id": headers.get("X-Request-ID"), "user_class": _fs.user_class(headers)}

        return await ctx.call_image(spec, target, fields=fields)
