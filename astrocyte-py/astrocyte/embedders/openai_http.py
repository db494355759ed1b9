"""Embeddings from any OpenAI-compatible ``/v1/embeddings`` endpoint.

Works with OpenAI, vLLM, Ollama, LiteLLM, text-embeddings-inference and similar.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

from astrocyte._providers import DEFAULT_BASE_URL, check_common_options, openai_client
from astrocyte.errors import EmbedderError, ValidationError
from astrocyte.spi import HealthStatus, Vector

__all__ = ["KNOWN_DIMENSIONS", "OpenAIEmbedder"]

KNOWN_DIMENSIONS: Mapping[str, int] = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
"""Native widths of OpenAI's models, used when ``dimensions`` is not given."""


class OpenAIEmbedder:
    """Client for an OpenAI-compatible embeddings API.

    Args:
        model: model name sent in each request.
        base_url: API root including the version, e.g. ``https://api.openai.com/v1``
            or ``http://localhost:11434/v1``; requests go to ``{base_url}/embeddings``.
        api_key: sent as ``Authorization: Bearer``; never logged or put in errors.
        api_key_env: name of an environment variable holding the key (keeps the
            secret out of config files). With neither, no Authorization is sent.
        dimensions: vector width. If omitted it is looked up in
            :data:`KNOWN_DIMENSIONS`, else learnt from the first response (call
            :meth:`warmup` before reading :attr:`dimensions`).
        send_dimensions: also send ``dimensions`` in the request, for models that
            can shorten their output (OpenAI text-embedding-3-*).
        timeout: seconds per HTTP request.
        max_retries: extra attempts on 429/408/5xx and connection failures.
        batch_size: most texts per request; larger inputs are split.
        max_concurrency: requests of one :meth:`embed` call in flight at once.
        query_prefix / document_prefix: prepended per ``kind``, for asymmetric
            models (e.g. ``"search_query: "`` for nomic-embed-text).
        headers: extra HTTP headers (e.g. ``OpenAI-Organization``).
        backoff_base / backoff_max: retry wait growth and ceiling, seconds.
        model_id: id for stored-vector compatibility; default ``model``.

    Returned vectors are re-normalised to unit length: not every server does it.
    """

    def __init__(
        self,
        *,
        model: str,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str | None = None,
        api_key_env: str | None = None,
        dimensions: int | None = None,
        send_dimensions: bool = False,
        timeout: float = 30.0,
        max_retries: int = 3,
        batch_size: int = 128,
        max_concurrency: int = 4,
        query_prefix: str = "",
        document_prefix: str = "",
        headers: Mapping[str, str] | None = None,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        model_id: str | None = None,
    ) -> None:
        if not isinstance(model, str) or not model:
            raise ValidationError("model", "must be a non-empty string")
        check_common_options(
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
        )
        for name, value in (("batch_size", batch_size), ("max_concurrency", max_concurrency)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValidationError(name, f"must be a positive integer, got {value!r}")
        if dimensions is not None and (
            not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1
        ):
            raise ValidationError("dimensions", f"must be a positive integer, got {dimensions!r}")
        if send_dimensions and dimensions is None:
            raise ValidationError("dimensions", "is required when send_dimensions is true")
        self._model = model
        self._model_id = model_id or model
        self._dimensions = dimensions if dimensions is not None else KNOWN_DIMENSIONS.get(model)
        self._send_dimensions = send_dimensions
        self._batch_size = batch_size
        self._max_concurrency = max_concurrency
        self._prefixes = {"query": query_prefix, "document": document_prefix}
        self._http = openai_client(
            base_url=base_url,
            api_key=api_key,
            api_key_env=api_key_env,
            headers=headers,
            timeout=timeout,
            max_retries=max_retries,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            error_cls=EmbedderError,
            label=f"embeddings model {model!r}",
        )

    def __repr__(self) -> str:
        # Spelled out so a debugger or log line never shows the headers (the key).
        return (
            f"OpenAIEmbedder(model={self._model!r}, base_url={self._http.base_url!r}, "
            f"dimensions={self._dimensions!r})"
        )

    @property
    def model_id(self) -> str:
        """Stable id of the model; stored vectors are only comparable within one."""
        return self._model_id

    @property
    def dimensions(self) -> int:
        """Vector width.

        Raises:
            EmbedderError: not configured and not yet learnt from a response.
        """
        if self._dimensions is None:
            raise EmbedderError(
                f"dimensions of embeddings model {self._model!r} are not known yet",
                fix="pass dimensions=, or await embedder.warmup() first",
            )
        return self._dimensions

    @property
    def base_url(self) -> str:
        """API root the requests go to."""
        return self._http.base_url

    async def embed(
        self, texts: Sequence[str], *, kind: Literal["document", "query"] = "document"
    ) -> Vector:
        """Embed ``texts`` (split into requests of ``batch_size``), in input order.

        Returns ``float32`` of shape ``(len(texts), dimensions)``, rows unit-length.

        Raises:
            EmbedderError: the server failed, or answered with the wrong number of
                vectors or the wrong width.
        """
        if isinstance(texts, str):
            raise ValidationError(
                "texts", "expected a sequence of strings, got one str", fix="wrap it in a list"
            )
        prefix = self._prefixes.get(kind, "")
        items: list[str] = []
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise ValidationError(f"texts[{i}]", f"expected str, got {type(text).__name__}")
            items.append(prefix + text)
        if not items:
            return np.zeros((0, self._dimensions or 0), dtype=np.float32)

        chunks = [items[i : i + self._batch_size] for i in range(0, len(items), self._batch_size)]
        if self._dimensions is None:
            # Learn the width from one request before fanning out, so concurrent
            # batches are all checked against the same number.
            first = await self._embed_chunk(chunks[0])
            rest = await self._gather(chunks[1:])
            parts = [first, *rest]
        else:
            parts = await self._gather(chunks)
        return np.concatenate(parts, axis=0)

    async def warmup(self) -> None:
        """Embed one string: opens the connection and learns ``dimensions``."""
        await self.embed(["warmup"])

    async def health(self) -> HealthStatus:
        """Whether the server answers ``GET {base_url}/models`` (free, unlike an embed)."""
        ok, detail = await self._http.get_ok("models")
        return HealthStatus(ok=ok, detail=detail)

    async def close(self) -> None:
        """Close the HTTP connection pool."""
        await self._http.close()

    async def _gather(self, chunks: list[list[str]]) -> list[Vector]:
        if not chunks:
            return []
        semaphore = asyncio.Semaphore(self._max_concurrency)

        async def run(chunk: list[str]) -> Vector:
            async with semaphore:
                return await self._embed_chunk(chunk)

        tasks = [asyncio.ensure_future(run(chunk)) for chunk in chunks]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            # First failure wins; the other requests are pointless now.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    async def _embed_chunk(self, chunk: list[str]) -> Vector:
        payload: dict[str, Any] = {"model": self._model, "input": chunk}
        if self._send_dimensions:
            payload["dimensions"] = self._dimensions
        body = await self._http.post_json("embeddings", payload)
        return self._parse(body, len(chunk))

    def _parse(self, body: Any, expected: int) -> Vector:
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, list):
            raise self._http.error(
                "response has no 'data' list",
                fix="check that base_url points at an OpenAI-compatible embeddings API",
            )
        if len(data) != expected:
            raise self._http.error(f"asked for {expected} embeddings, response has {len(data)}")
        rows: list[list[float] | None] = [None] * expected
        for pos, item in enumerate(data):
            if not isinstance(item, dict) or not isinstance(item.get("embedding"), list):
                raise self._http.error(
                    f"data[{pos}] has no 'embedding' list",
                    fix="request float vectors (base64 encoding is not supported)",
                )
            # OpenAI tags each vector with its input index; honour it rather than
            # trusting the array order, and fall back to order when it is absent.
            index = item.get("index", pos)
            if not isinstance(index, int) or not 0 <= index < expected or rows[index] is not None:
                raise self._http.error(f"data[{pos}] has a bad or duplicate index {index!r}")
            rows[index] = item["embedding"]
        width = self._dimensions
        if width is None:
            first = rows[0]
            width = len(first) if first is not None else 0
            if width < 1:
                raise self._http.error("response embeddings are empty")
        for index, row in enumerate(rows):
            if row is None or len(row) != width:
                got = "none" if row is None else len(row)
                raise self._http.error(
                    f"embedding {index} has {got} dimensions, expected {width}",
                    fix="set dimensions= to the model's real output width",
                )
        try:
            matrix = np.asarray(rows, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise self._http.error("embeddings contain non-numeric values") from exc
        if not np.isfinite(matrix).all():
            raise self._http.error("embeddings contain NaN or infinite values")
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        if (norms == 0).any():
            raise self._http.error("response contains an all-zero embedding")
        if self._dimensions is None:
            self._dimensions = width
        # Normalised in float64 then narrowed, so cosine == dot product holds to
        # float32 precision.
        result: Vector = (matrix / norms).astype(np.float32)
        return result
