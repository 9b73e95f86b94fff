"""Providers and the seam they plug into.

Each built-in provider is a package here (``facestudio``, ``acedata``, ``ailab``); a third party
adds one through the ``aioface.providers`` entry-point group or :func:`register`.
"""

from ..transports._base import FormFile as FormFile
from ..transports._base import RequestSpec as RequestSpec
from ..transports._base import Response as Response
from ._base import BatchOp as BatchOp
from ._base import BenchOp as BenchOp
from ._base import ProviderContext as ProviderContext
from ._base import ProviderNamespace as ProviderNamespace
from ._base import ProviderSpec as ProviderSpec
from ._registry import get as get
from ._registry import operations as operations
from ._registry import providers as providers
from ._registry import register as register
from ._registry import unregister as unregister

__all__ = [
    "BatchOp",
    "BenchOp",
    "FormFile",
    "ProviderContext",
    "ProviderNamespace",
    "ProviderSpec",
    "RequestSpec",
    "Response",
    "get",
    "operations",
    "providers",
    "register",
    "unregister",
]
