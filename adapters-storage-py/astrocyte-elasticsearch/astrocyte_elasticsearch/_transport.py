"""Client construction, Elasticsearch/OpenSearch flavor handling and error mapping.

The official ``elasticsearch`` 8 client talks to OpenSearch with two changes, both made
by :class:`OpenSearchNode` (a transport node class, so the client API is unchanged):

* it sends ``application/vnd.elasticsearch+json; compatible-with=8`` as Accept and
  Content-Type, which OpenSearch answers with 406: the node sends plain
  ``application/json`` / ``application/x-ndjson`` instead;
* it refuses any 2xx response without ``X-Elastic-Product: Elasticsearch``: the node
  adds that header to OpenSearch's responses. It is only used once the server has
  identified itself as OpenSearch (``flavor: opensearch`` or detected by ``auto``).
"""

from __future__ import annotations

import base64
import dataclasses
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from astrocyte.errors import ConfigError, ProviderUnavailable, StoreError
from elastic_transport import (
    AiohttpHttpNode,
    ConnectionError,
    ConnectionTimeout,
    HttpHeaders,
    TlsError,
    TransportError,
)
from elastic_transport._node import NodeApiResponse
from elastic_transport.client_utils import DEFAULT, DefaultType
from elasticsearch import (
    ApiError,
    AsyncElasticsearch,
    AuthenticationException,
    AuthorizationException,
)

from astrocyte_elasticsearch._options import Options

_COMPAT_MIMETYPE = re.compile(
    r"application/vnd\.elasticsearch\+([\w-]+)(\s*;\s*compatible-with=\d+)?"
)


def plain_mimetype(value: str) -> str:
    """``application/vnd.elasticsearch+json; compatible-with=8`` -> ``application/json``."""
    return _COMPAT_MIMETYPE.sub(r"application/\1", value)


class OpenSearchNode(AiohttpHttpNode):
    """The client's aiohttp node, speaking plain JSON media types to OpenSearch."""

    async def perform_request(  # type: ignore[override]
        self,
        method: str,
        target: str,
        body: bytes | None = None,
        headers: HttpHeaders | None = None,
        request_timeout: DefaultType | float | None = DEFAULT,
    ) -> NodeApiResponse:
        """Send with plain media types; mark the answer as the client expects."""
        if headers:
            headers = headers.copy()
            for name in ("accept", "content-type"):
                if name in headers:
                    headers[name] = plain_mimetype(headers[name])
        response = await super().perform_request(
            method, target, body=body, headers=headers, request_timeout=request_timeout
        )
        meta = response.meta
        if "x-elastic-product" not in meta.headers:
            patched = meta.headers.copy()
            patched["x-elastic-product"] = "Elasticsearch"
            meta = dataclasses.replace(meta, headers=patched)
        return NodeApiResponse(meta, response.body)


def auth_headers(options: Options) -> dict[str, str]:
    """The Authorization header for raw transport requests (the flavor probe)."""
    if options.api_key is not None:
        return {"authorization": f"ApiKey {options.api_key}"}
    if options.username is not None and options.password is not None:
        token = base64.b64encode(f"{options.username}:{options.password}".encode()).decode()
        return {"authorization": f"Basic {token}"}
    return {}


def build_client(options: Options, *, opensearch: bool) -> AsyncElasticsearch:
    """A client for ``options`` (no I/O happens until the first request)."""
    kwargs: dict[str, Any] = {
        "hosts": [options.url],
        "request_timeout": options.timeout_s,
        # One retry rides over a pooled keep-alive connection the server has dropped
        # (a restart); a timeout is never retried, so it surfaces within timeout_s.
        "max_retries": 1,
        "retry_on_timeout": False,
        "verify_certs": options.verify_certs,
        "node_class": OpenSearchNode if opensearch else AiohttpHttpNode,
    }
    if options.ca_certs is not None:
        kwargs["ca_certs"] = options.ca_certs
    if options.api_key is not None:
        kwargs["api_key"] = options.api_key
    elif options.username is not None and options.password is not None:
        kwargs["basic_auth"] = (options.username, options.password)
    return AsyncElasticsearch(**kwargs)


def credential_key(options: Options) -> str:
    """The option a 401/403 points at."""
    return "api_key" if options.api_key is not None else "password"


async def detect_flavor(client: AsyncElasticsearch, options: Options) -> str:
    """Ask the server what it is: Elasticsearch marks every response with
    ``X-Elastic-Product``; OpenSearch names itself in ``GET /``."""
    with translate_errors("elasticsearch", options):
        meta, body = await client.transport.perform_request(
            "GET",
            "/",
            headers={"accept": "application/json", **auth_headers(options)},
            request_timeout=options.timeout_s,
        )
    check_auth_status(meta.status, options)
    if meta.headers.get("x-elastic-product") == "Elasticsearch":
        return "elasticsearch"
    version = body.get("version") if isinstance(body, Mapping) else None
    if isinstance(version, Mapping) and version.get("distribution") == "opensearch":
        return "opensearch"
    raise ConfigError(
        "flavor",
        f"the server at {options.url} is neither Elasticsearch nor OpenSearch (HTTP {meta.status})",
        fix="check url, or set flavor to elasticsearch or opensearch",
    )


def check_auth_status(status: int, options: Options) -> None:
    """Raise :class:`ConfigError` for a 401/403 answer."""
    if status == 401:
        raise ConfigError(
            credential_key(options),
            f"the server at {options.url} rejected the credentials (HTTP 401)",
            fix="check username/password or api_key",
        )
    if status == 403:
        raise ConfigError(
            "api_key" if options.api_key is not None else "username",
            f"the user lacks privileges on {options.url} (HTTP 403)",
            fix="grant the user index privileges on the index_prefix-* indices",
        )


@contextmanager
def translate_errors(provider: str, options: Options) -> Iterator[None]:
    """Map client exceptions to Astrocyte's: unreachable/timeout -> ProviderUnavailable,
    credentials or TLS setup -> ConfigError, anything else -> StoreError."""
    try:
        yield
    except (AuthenticationException, AuthorizationException) as exc:
        check_auth_status(exc.meta.status, options)
        raise  # pragma: no cover - both statuses are handled above
    except ConnectionTimeout:
        raise ProviderUnavailable(
            provider, f"no answer from {options.url} within timeout_s={options.timeout_s:g}s"
        ) from None
    except TlsError as exc:
        raise ConfigError(
            "ca_certs",
            f"TLS handshake with {options.url} failed: {exc.message}",
            fix="set ca_certs to the server's CA bundle (or verify_certs: false for tests)",
        ) from None
    except ConnectionError as exc:
        raise ProviderUnavailable(provider, f"cannot reach {options.url}: {exc.message}") from None
    except TransportError as exc:
        raise ProviderUnavailable(provider, f"transport error: {exc.message}") from None
    except TimeoutError:
        raise ProviderUnavailable(
            provider, f"no answer from {options.url} within timeout_s={options.timeout_s:g}s"
        ) from None
    except ApiError as exc:
        # Overload and unavailable shards are transient: the caller may retry.
        if exc.meta.status in (429, 502, 503, 504):
            raise ProviderUnavailable(
                provider, f"server busy or unavailable (HTTP {exc.meta.status}): {exc.message}"
            ) from None
        raise StoreError(f"{provider}: HTTP {exc.meta.status}: {_reason(exc)}") from None


def _reason(exc: ApiError) -> str:
    body = exc.body
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping):
            return f"{error.get('type')}: {error.get('reason')}"
    return str(exc.message)
