"""The provider registry: the built-in providers, then those of the ``aioface.providers``
entry-point group, then any registered at run time with :func:`register`.

An entry point names a :class:`ProviderSpec` (or a function returning one)::

    [project.entry-points."aioface.providers"]
    myface = "myface_aioface:SPEC"
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping

from .._errors import ConfigurationError
from ._base import BatchOp, ProviderSpec

log = logging.getLogger("aioface")

GROUP = "aioface.providers"
#: Built-in providers, in the order their operations are preferred (``swap`` -> acedata first).
BUILTIN = (
    "aioface.providers.facestudio:SPEC",
    "aioface.providers.acedata:SPEC",
    "aioface.providers.ailab:SPEC",
)

_specs: dict[str, ProviderSpec] | None = None


def _load(ref: str) -> object:
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def _as_spec(obj: object, where: str) -> ProviderSpec:
    if not isinstance(obj, ProviderSpec) and callable(obj):
        obj = obj()
    if not isinstance(obj, ProviderSpec):
        raise ConfigurationError(f"{where} is not an aioface ProviderSpec")
    return obj


def _discover() -> dict[str, ProviderSpec]:
    specs: dict[str, ProviderSpec] = {}
    for ref in BUILTIN:
        spec = _as_spec(_load(ref), ref)
        specs[spec.name] = spec
    from importlib.metadata import entry_points  # when providers are first asked for, not at import

    for ep in entry_points(group=GROUP):
        try:
            spec = _as_spec(ep.load(), f"entry point {ep.name} ({ep.value})")
        except Exception as exc:  # a broken plug-in must not break the built-in providers
            log.warning("aioface: provider plug-in %s could not be loaded: %s", ep.name, exc)
            continue
        if spec.name in specs:
            log.warning("aioface: provider plug-in %s clashes with provider %r; ignored", ep.value, spec.name)
            continue
        specs[spec.name] = spec
    return specs


def providers() -> Mapping[str, ProviderSpec]:
    """Every known provider by name, built-ins first."""
    global _specs
    if _specs is None:
        _specs = _discover()
    return _specs


def get(name: str) -> ProviderSpec:
    """One provider's spec, or :class:`ConfigurationError` listing the known ones."""
    spec = providers().get(name)
    if spec is None:
        raise ConfigurationError(f"unknown provider {name!r}; known: {', '.join(providers())}")
    return spec


def register(spec: ProviderSpec, *, replace: bool = False) -> None:
    """Add a provider at run time (clients made afterwards offer it)."""
    specs = dict(providers())
    if spec.name in specs and not replace:
        raise ConfigurationError(f"provider {spec.name!r} is already registered")
    specs[spec.name] = spec
    global _specs
    _specs = specs


def unregister(name: str) -> None:
    """Remove a provider registered at run time (tests)."""
    global _specs
    specs = dict(providers())
    specs.pop(name, None)
    _specs = specs


def operations() -> dict[str, list[tuple[ProviderSpec, BatchOp]]]:
    """op -> the providers that offer it, preferred first."""
    out: dict[str, list[tuple[ProviderSpec, BatchOp]]] = {}
    for spec in providers().values():
        for op in spec.batch_ops:
            out.setdefault(op.op, []).append((spec, op))
    return out


__all__ = ["BUILTIN", "GROUP", "get", "operations", "providers", "register", "unregister"]
