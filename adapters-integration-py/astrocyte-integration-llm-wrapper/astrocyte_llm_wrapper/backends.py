"""Where memories live: an in-process :class:`~astrocyte.Astrocyte` or the HTTP gateway.

Both speak the same small async interface (:class:`MemoryBackend`); the wrapper never
knows which one it has. Identity travels in a :class:`Scope`: the bank and, in process,
the :class:`~astrocyte.identity.context.AstrocyteContext`; over HTTP, the API key or
bearer token the gateway authenticates.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
from astrocyte import Astrocyte
from astrocyte.errors import BankNotFound
from astrocyte.identity.context import AstrocyteContext

__all__ = [
    "RETAIN_SOURCE",
    "BrainMemory",
    "GatewayMemory",
    "MemoryBackend",
    "MemoryUnavailable",
    "Scope",
]

#: ``metadata.source`` of every retained exchange.
RETAIN_SOURCE = "astrocyte-llm-wrapper"


class MemoryUnavailable(Exception):
    """Recall or retain failed (the wrapper logs it and goes on without memory)."""


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose memories: the bank (``None``: the caller's default bank) and the identity
    (``context`` in process; ``api_key`` or ``bearer_token`` over HTTP)."""

    bank: str | None = None
    context: AstrocyteContext | None = None
    api_key: str | None = None
    bearer_token: str | None = None


class MemoryBackend(Protocol):
    """What the wrapper needs from a memory service."""

    async def recall(
        self, query: str, scope: Scope, *, max_results: int, max_tokens: int | None
    ) -> list[str]:
        """Texts of the best hits, best first (empty when the bank does not exist)."""
        ...

    async def retain(self, content: str, scope: Scope, *, tags: Sequence[str]) -> None:
        """Store one exchange (``content_type`` ``conversation``)."""
        ...

    async def aclose(self) -> None:
        """Release what the backend opened (never the caller's brain)."""
        ...


class BrainMemory:
    """An in-process :class:`~astrocyte.Astrocyte`; ``scope.context`` is the caller.

    The brain stays the caller's: :meth:`aclose` does not close it.
    """

    def __init__(self, brain: Astrocyte) -> None:
        self.brain = brain

    async def recall(
        self, query: str, scope: Scope, *, max_results: int, max_tokens: int | None
    ) -> list[str]:
        try:
            result = await self.brain.recall(
                query,
                scope.bank,
                max_results=max_results,
                max_tokens=max_tokens,
                context=scope.context,
            )
        except BankNotFound:
            # A bank nobody retained into yet simply has no memories.
            return []
        return [hit.text for hit in result.hits]

    async def retain(self, content: str, scope: Scope, *, tags: Sequence[str]) -> None:
        await self.brain.retain(
            content,
            scope.bank,
            content_type="conversation",
            metadata={"source": RETAIN_SOURCE},
            tags=list(tags) or None,
            context=scope.context,
        )

    async def aclose(self) -> None:
        """Nothing of ours to close."""


class GatewayMemory:
    """The Astrocyte HTTP gateway (``POST /v1/recall``, ``POST /v1/retain``).

    ``scope.api_key`` is sent as ``X-Api-Key``; ``scope.bearer_token`` as
    ``Authorization: Bearer`` (it wins when both are set). One
    :class:`httpx.AsyncClient` per backend, created on first use in the event loop
    that uses it. ``transport`` is for tests and custom networking.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"the gateway URL must be http(s)://host[:port][/prefix], not {url!r}")
        self.url = url.rstrip("/")
        self._timeout = timeout
        self._transport = transport
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self.url, timeout=self._timeout, transport=self._transport
            )
        return self._client

    @staticmethod
    def _headers(scope: Scope) -> dict[str, str]:
        if scope.bearer_token:
            return {"Authorization": f"Bearer {scope.bearer_token}"}
        if scope.api_key:
            return {"X-Api-Key": scope.api_key}
        return {}

    async def recall(
        self, query: str, scope: Scope, *, max_results: int, max_tokens: int | None
    ) -> list[str]:
        body: dict[str, Any] = {"query": query, "max_results": max_results}
        if scope.bank is not None:
            body["bank_id"] = scope.bank
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        response = await self._http().post("/v1/recall", json=body, headers=self._headers(scope))
        if response.status_code != 200:
            code = _error_code(response)
            # A bank that does not exist yet (a new user's) simply has no memories.
            if response.status_code == 404 and code == "bank_not_found":
                return []
            raise MemoryUnavailable(_status_text("recall", response.status_code, code))
        try:
            hits = response.json().get("hits") or []
            return [hit["text"] for hit in hits if isinstance(hit.get("text"), str)]
        except (ValueError, AttributeError, TypeError, KeyError):
            raise MemoryUnavailable("recall answered with an unexpected body") from None

    async def retain(self, content: str, scope: Scope, *, tags: Sequence[str]) -> None:
        body: dict[str, Any] = {
            "content": content,
            "content_type": "conversation",
            "metadata": {"source": RETAIN_SOURCE},
        }
        if scope.bank is not None:
            body["bank_id"] = scope.bank
        if tags:
            body["tags"] = list(tags)
        response = await self._http().post("/v1/retain", json=body, headers=self._headers(scope))
        if not 200 <= response.status_code < 300:
            raise MemoryUnavailable(
                _status_text("retain", response.status_code, _error_code(response))
            )

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


def _error_code(response: httpx.Response) -> str | None:
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        return None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None


def _status_text(operation: str, status: int, code: str | None) -> str:
    text = f"{operation} answered HTTP {status}"
    return f"{text} ({code})" if code else text
