"""Translating qdrant-client and transport failures into Astrocyte's typed errors.

Retrying can fix an unreachable, slow or overloaded server, so those become
:class:`ProviderUnavailable`; it cannot fix a rejected api key or an address that is no
Qdrant server, so those become :class:`ConfigError`. Anything else Qdrant refuses is a
:class:`StoreError` carrying the server's (short) answer; the api key is never in it.
"""

from __future__ import annotations

import json

import httpx
from astrocyte.errors import AstrocyteError, ConfigError, ProviderUnavailable, StoreError
from qdrant_client.common.client_exceptions import ResourceExhaustedResponse
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

PROVIDER = "qdrant"

_MAX_DETAIL = 300


def translate(
    exc: BaseException, action: str, *, target: str, timeout_s: float, remote: bool
) -> Exception:
    """The Astrocyte error to raise for ``exc``, raised while doing ``action`` against
    a server (``remote``) or qdrant-client's local mode."""
    if isinstance(exc, AstrocyteError):
        return exc
    if isinstance(exc, TimeoutError):
        return ProviderUnavailable(PROVIDER, f"{action} timed out after {timeout_s:g}s ({target})")
    if isinstance(exc, ResourceExhaustedResponse):
        return ProviderUnavailable(
            PROVIDER,
            f"{action}: server is overloaded ({target})",
            fix=f"retry after {exc.retry_after_s}s",
        )
    if isinstance(exc, ResponseHandlingException):
        return _transport(exc.source, action, target=target, timeout_s=timeout_s)
    if isinstance(exc, httpx.HTTPError):
        return _transport(exc, action, target=target, timeout_s=timeout_s)
    if isinstance(exc, UnexpectedResponse):
        return _http_status(exc, action, target=target)
    if remote and isinstance(exc, (json.JSONDecodeError, AssertionError)):
        # The client could not read the answer as Qdrant's (not JSON, or no result).
        return _not_qdrant(action, target, type(exc).__name__)
    if isinstance(exc, (ConnectionError, OSError)):
        return ProviderUnavailable(PROVIDER, f"{action}: {type(exc).__name__} ({target})")
    return StoreError(f"{PROVIDER}: {action} failed: {type(exc).__name__}: {_short(str(exc))}")


def _transport(source: BaseException, action: str, *, target: str, timeout_s: float) -> Exception:
    if isinstance(source, httpx.TimeoutException):
        return ProviderUnavailable(PROVIDER, f"{action} timed out after {timeout_s:g}s ({target})")
    if isinstance(source, (httpx.TransportError, OSError)):
        return ProviderUnavailable(
            PROVIDER, f"{action}: cannot reach {target}: {type(source).__name__}"
        )
    # A body that did not parse as Qdrant's answer: something else listens there.
    return _not_qdrant(action, target, type(source).__name__)


def _not_qdrant(action: str, target: str, problem: str) -> ConfigError:
    return ConfigError(
        "url",
        f"{target} answered {action} with something that is not a Qdrant response ({problem})",
        fix="point url at a Qdrant server's REST port (6333 by default)",
    )


def _http_status(exc: UnexpectedResponse, action: str, *, target: str) -> Exception:
    status = exc.status_code or 0
    if status in (401, 403):
        return ConfigError(
            "api_key",
            f"{target} refused {action} with HTTP {status}: the api key is missing or wrong",
            fix="set storage.vector_store.api_key to a key the server accepts",
        )
    if status in (408, 429) or status >= 500:
        return ProviderUnavailable(PROVIDER, f"{action}: server answered HTTP {status} ({target})")
    detail = _short(exc.content.decode("utf-8", "replace"))
    if status == 404:
        # Every endpoint this adapter uses exists on any Qdrant 1.x (a missing collection
        # is handled before this), so a 404 means the URL (or its path) is wrong.
        return ConfigError(
            "url",
            f"{target} answered {action} with HTTP 404 ({detail}): not a Qdrant REST API",
            fix="point url at a Qdrant server's REST port (6333 by default), without a path "
            "unless the server sits behind a proxy prefix",
        )
    return StoreError(f"{PROVIDER}: {action} failed with HTTP {status}: {detail}")


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 3] + "..."
