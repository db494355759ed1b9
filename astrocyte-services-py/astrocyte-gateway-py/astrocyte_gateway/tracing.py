"""Optional OpenTelemetry tracing: real spans when ``opentelemetry-api`` is importable,
no-ops otherwise.

The library exposes no per-stage hooks, so the gateway traces one span per HTTP
request (made by :mod:`astrocyte_gateway.middleware`) and, inside it, one span around
each library call (``astrocyte.retain``, ``astrocyte.recall``, ...). Without an SDK
configured by the deployment the API's tracer is itself a no-op, so this costs nothing.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Protocol

__all__ = ["SpanLike", "enabled", "span"]

try:
    import opentelemetry.trace as _trace
except ImportError:  # pragma: no cover - exercised only without the otel extra
    _trace = None  # type: ignore[assignment]

_TRACER_NAME = "astrocyte_gateway"


class SpanLike(Protocol):
    """The part of an OpenTelemetry span the gateway uses."""

    def set_attribute(self, key: str, value: Any) -> None:
        """Attach one attribute."""
        ...

    def update_name(self, name: str) -> None:
        """Rename the span (the route template is known only after routing)."""
        ...


class _NoSpan:
    def set_attribute(self, key: str, value: Any) -> None:
        """Ignored."""

    def update_name(self, name: str) -> None:
        """Ignored."""


def enabled() -> bool:
    """Whether the OpenTelemetry API is importable."""
    return _trace is not None


@contextmanager
def span(name: str, attributes: Mapping[str, Any] | None = None) -> Iterator[SpanLike]:
    """A current span named ``name`` (a no-op span without OpenTelemetry).

    The tracer is looked up on every call, not at import, so a tracer provider the
    deployment installs after importing the gateway is still used.
    """
    if _trace is None:
        yield _NoSpan()
        return
    tracer = _trace.get_tracer(_TRACER_NAME)
    attrs = {k: v for k, v in (attributes or {}).items() if v is not None}
    with tracer.start_as_current_span(name, attributes=attrs) as current:
        yield current
