"""Optional OpenTelemetry tracing: real spans when ``opentelemetry-api`` is importable
and the deployment has configured a tracer provider, no-ops otherwise.

The library exposes no per-stage hooks, so the gateway traces one span per HTTP
request (made by :mod:`astrocyte_gateway.middleware`) and, inside it, one span around
each library call (``astrocyte.retain``, ``astrocyte.recall``, ...).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

__all__ = ["NO_SPAN", "SpanLike", "active", "enabled", "span"]

try:
    import opentelemetry.trace as _trace
except ImportError:  # pragma: no cover - exercised only without the otel extra
    _trace = None  # type: ignore[assignment]

_TRACER_NAME = "astrocyte_gateway"

# Providers that record nothing: the API's placeholder until an SDK provider is set,
# and the explicit no-op one. Spans from them are non-recording copies of the current
# span context, so skipping them changes nothing observable but saves ~10 µs each.
_NOOP_PROVIDERS: tuple[type[Any], ...] = (
    (_trace.ProxyTracerProvider, _trace.NoOpTracerProvider) if _trace is not None else ()
)


class SpanLike(Protocol):
    """The part of an OpenTelemetry span the gateway uses."""

    def set_attribute(self, key: str, value: Any) -> None:
        """Attach one attribute."""
        ...

    def update_name(self, name: str) -> None:
        """Rename the span (the route template is known only after routing)."""
        ...


class _NoSpan:
    """A span that records nothing, and its own context manager (no allocation per
    use: it has no state)."""

    def set_attribute(self, key: str, value: Any) -> None:
        """Ignored."""

    def update_name(self, name: str) -> None:
        """Ignored."""

    def __enter__(self) -> _NoSpan:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


#: The no-op span (and its context manager), for callers that checked :func:`active`.
NO_SPAN = _NoSpan()


def enabled() -> bool:
    """Whether the OpenTelemetry API is importable."""
    return _trace is not None


def active() -> bool:
    """Whether spans are recorded: the API is importable and a tracer provider other
    than the API's placeholder or no-op one is configured.

    Checked on every call, not at import, so a tracer provider the deployment installs
    after importing the gateway is still used.
    """
    return _trace is not None and type(_trace.get_tracer_provider()) not in _NOOP_PROVIDERS


def span(
    name: str, attributes: Mapping[str, Any] | None = None
) -> AbstractContextManager[SpanLike]:
    """A current span named ``name`` (a no-op span when tracing is not :func:`active`).

    The tracer is looked up on every call, not at import, so a tracer provider the
    deployment installs after importing the gateway is still used.
    """
    if not active():
        return NO_SPAN
    return _recorded_span(name, attributes)


@contextmanager
def _recorded_span(name: str, attributes: Mapping[str, Any] | None) -> Iterator[SpanLike]:
    tracer = _trace.get_tracer(_TRACER_NAME)
    attrs = {k: v for k, v in (attributes or {}).items() if v is not None}
    with tracer.start_as_current_span(name, attributes=attrs) as current:
        yield current
