"""OpenAIEmbedder against a real OpenAI-compatible HTTP server on loopback."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import AsyncIterator, Iterator

import numpy as np
import pytest

from astrocyte.embedders import OpenAIEmbedder
from astrocyte.errors import EmbedderError, ValidationError
from astrocyte.spi import Embedder
from astrocyte.testing.openai_server import OpenAICompatibleServer

KEY = "sk-test-0123456789abcdef"


def raw_vector(text: str) -> list[float]:
    """What the server returns for ``text``: known, and deliberately not unit-length."""
    return [float(len(text)), 1.0, -2.0, float(sum(map(ord, text)) % 7)]


@pytest.fixture(scope="module")
def shared_server() -> Iterator[OpenAICompatibleServer]:
    # One server for the module (it runs on its own thread, so it outlives each
    # test's event loop); stopping uvicorn takes ~0.2 s, too slow to pay per test.
    with OpenAICompatibleServer(embed_dim=4, embed_fn=raw_vector, api_key=KEY) as server:
        yield server


@pytest.fixture
def srv(shared_server: OpenAICompatibleServer) -> OpenAICompatibleServer:
    shared_server.clear()
    return shared_server


@pytest.fixture
async def embedder(srv: OpenAICompatibleServer) -> AsyncIterator[OpenAIEmbedder]:
    emb = OpenAIEmbedder(
        base_url=srv.base_url,
        model="embed-model",
        api_key=KEY,
        dimensions=4,
        backoff_base=0.01,
    )
    yield emb
    await emb.close()


def expected(texts: list[str]) -> np.ndarray:
    rows = np.array([raw_vector(t) for t in texts], dtype=np.float64)
    unit: np.ndarray = (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)
    return unit


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_embeds_normalises_and_authenticates(
    srv: OpenAICompatibleServer, embedder: OpenAIEmbedder
) -> None:
    texts = ["hello", "a longer piece of text", ""]
    vecs = await embedder.embed(texts)
    assert vecs.shape == (3, 4)
    assert vecs.dtype == np.float32
    np.testing.assert_allclose(vecs, expected(texts), atol=1e-6)
    (request,) = srv.requests
    assert request.path == "/v1/embeddings"
    assert request.authorization == f"Bearer {KEY}"
    assert request.json == {"model": "embed-model", "input": texts}
    assert isinstance(embedder, Embedder)
    assert embedder.model_id == "embed-model"


async def test_no_key_sends_no_authorization() -> None:
    async with OpenAICompatibleServer(embed_dim=4) as server:
        emb = OpenAIEmbedder(base_url=server.base_url, model="m", dimensions=4)
        await emb.embed(["x"])
        await emb.close()
        assert server.requests[0].authorization is None


async def test_splits_large_inputs_into_batches(srv: OpenAICompatibleServer) -> None:
    emb = OpenAIEmbedder(base_url=srv.base_url, model="m", api_key=KEY, dimensions=4, batch_size=3)
    texts = [f"text number {i}" for i in range(10)]
    vecs = await emb.embed(texts)
    await emb.close()
    np.testing.assert_allclose(vecs, expected(texts), atol=1e-6)
    sent = sorted((r.json["input"] for r in srv.requests), key=lambda batch: texts.index(batch[0]))
    assert sent == [texts[0:3], texts[3:6], texts[6:9], texts[9:10]]


async def test_discovers_dimensions_from_first_response(srv: OpenAICompatibleServer) -> None:
    emb = OpenAIEmbedder(base_url=srv.base_url, model="custom", api_key=KEY, batch_size=2)
    with pytest.raises(EmbedderError, match="not known yet"):
        _ = emb.dimensions
    vecs = await emb.embed(["a", "b", "c", "d", "e"])
    assert vecs.shape == (5, 4)
    assert emb.dimensions == 4
    await emb.close()


async def test_warmup_learns_dimensions(srv: OpenAICompatibleServer) -> None:
    emb = OpenAIEmbedder(base_url=srv.base_url, model="custom", api_key=KEY)
    await emb.warmup()
    assert emb.dimensions == 4
    await emb.close()


def test_known_openai_models_need_no_dimensions() -> None:
    assert OpenAIEmbedder(model="text-embedding-3-small").dimensions == 1536
    assert OpenAIEmbedder(model="text-embedding-3-large").dimensions == 3072


async def test_send_dimensions() -> None:
    async with OpenAICompatibleServer(embed_dim=8) as server:
        emb = OpenAIEmbedder(
            base_url=server.base_url, model="m", dimensions=6, send_dimensions=True
        )
        vecs = await emb.embed(["x"])
        await emb.close()
    assert vecs.shape == (1, 6)
    assert server.requests[0].json["dimensions"] == 6


async def test_query_and_document_prefixes(srv: OpenAICompatibleServer) -> None:
    emb = OpenAIEmbedder(
        base_url=srv.base_url,
        model="nomic",
        api_key=KEY,
        dimensions=4,
        query_prefix="search_query: ",
        document_prefix="search_document: ",
    )
    await emb.embed(["q"], kind="query")
    await emb.embed(["d"])
    await emb.close()
    assert [r.json["input"] for r in srv.requests] == [["search_query: q"], ["search_document: d"]]


async def test_empty_input_sends_nothing(
    srv: OpenAICompatibleServer, embedder: OpenAIEmbedder
) -> None:
    vecs = await embedder.embed([])
    assert vecs.shape == (0, 4)
    assert srv.requests == []


async def test_wrong_dimension_is_reported(srv: OpenAICompatibleServer) -> None:
    emb = OpenAIEmbedder(base_url=srv.base_url, model="m", api_key=KEY, dimensions=16)
    with pytest.raises(EmbedderError) as info:
        await emb.embed(["x"])
    await emb.close()
    assert "4 dimensions, expected 16" in str(info.value)


async def test_wrong_count_is_reported(
    srv: OpenAICompatibleServer, embedder: OpenAIEmbedder
) -> None:
    srv.respond_next(body={"data": [{"index": 0, "embedding": [1, 0, 0, 0]}]})
    with pytest.raises(EmbedderError, match="asked for 2 embeddings, response has 1"):
        await embedder.embed(["a", "b"])


async def test_rows_are_placed_by_index(
    srv: OpenAICompatibleServer, embedder: OpenAIEmbedder
) -> None:
    srv.respond_next(
        body={
            "data": [
                {"index": 1, "embedding": [0, 2, 0, 0]},
                {"index": 0, "embedding": [3, 0, 0, 0]},
            ]
        }
    )
    vecs = await embedder.embed(["first", "second"])
    np.testing.assert_array_equal(vecs, [[1, 0, 0, 0], [0, 1, 0, 0]])


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("{not json", "not valid JSON"),
        ({"object": "list"}, "no 'data' list"),
        ({"data": [{"index": 0}]}, "no 'embedding' list"),
        ({"data": [{"index": 0, "embedding": "AAAA"}]}, "no 'embedding' list"),
        ({"data": [{"index": 3, "embedding": [1, 0, 0, 0]}]}, "bad or duplicate index"),
        ({"data": [{"index": 0, "embedding": [0, 0, 0, 0]}]}, "all-zero"),
        ({"data": [{"index": 0, "embedding": [1, "x", 0, 0]}]}, "non-numeric"),
    ],
)
async def test_malformed_responses(
    srv: OpenAICompatibleServer, embedder: OpenAIEmbedder, body: object, needle: str
) -> None:
    srv.respond_next(body=body)  # type: ignore[arg-type]
    with pytest.raises(EmbedderError) as info:
        await embedder.embed(["only one"])
    assert needle in str(info.value)


async def test_retries_429_honouring_retry_after(
    srv: OpenAICompatibleServer, embedder: OpenAIEmbedder
) -> None:
    srv.fail_next(2, 429, retry_after=0.25)
    started = time.monotonic()
    vecs = await embedder.embed(["x"])
    elapsed = time.monotonic() - started
    np.testing.assert_allclose(vecs, expected(["x"]), atol=1e-6)
    arrivals = [r.received_at for r in srv.requests]
    assert len(arrivals) == 3
    # backoff_base is 0.01, so only Retry-After explains these waits.
    assert min(np.diff(arrivals)) >= 0.24
    assert elapsed >= 0.5


async def test_retries_5xx_with_backoff(
    srv: OpenAICompatibleServer, embedder: OpenAIEmbedder
) -> None:
    srv.fail_next(1, 500)
    srv.fail_next(1, 503)
    await embedder.embed(["x"])
    assert len(srv.requests) == 3


async def test_gives_up_after_max_retries(srv: OpenAICompatibleServer) -> None:
    emb = OpenAIEmbedder(
        base_url=srv.base_url,
        model="m",
        api_key=KEY,
        dimensions=4,
        max_retries=2,
        backoff_base=0.01,
    )
    srv.fail_next(5, 503, message="upstream overloaded")
    with pytest.raises(EmbedderError) as info:
        await emb.embed(["x"])
    await emb.close()
    assert len(srv.requests) == 3
    assert "HTTP 503" in str(info.value)
    assert "upstream overloaded" in str(info.value)
    assert "3 attempt(s)" in str(info.value)


async def test_retry_after_beyond_backoff_max_fails_fast(srv: OpenAICompatibleServer) -> None:
    emb = OpenAIEmbedder(
        base_url=srv.base_url, model="m", api_key=KEY, dimensions=4, backoff_max=1.0
    )
    srv.fail_next(1, 429, retry_after=120)
    started = time.monotonic()
    with pytest.raises(EmbedderError, match="retry after 120s"):
        await emb.embed(["x"])
    await emb.close()
    assert time.monotonic() - started < 1.0
    assert len(srv.requests) == 1


async def test_client_errors_are_not_retried(
    srv: OpenAICompatibleServer, embedder: OpenAIEmbedder
) -> None:
    srv.fail_next(1, 400, message="input too long for model")
    with pytest.raises(EmbedderError) as info:
        await embedder.embed(["x"])
    assert len(srv.requests) == 1
    assert "HTTP 400" in str(info.value)
    assert "input too long for model" in str(info.value)


async def test_api_key_never_leaks(
    srv: OpenAICompatibleServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    emb = OpenAIEmbedder(
        base_url=srv.base_url,
        model="m",
        api_key=KEY,
        dimensions=4,
        backoff_base=0.01,
        max_retries=1,
    )
    srv.fail_next(1, 500, message=f"internal error for key {KEY}")
    srv.fail_next(1, 401, message=f"Incorrect API key provided: {KEY}")
    with pytest.raises(EmbedderError) as info:
        await emb.embed(["x"])
    await emb.close()
    assert "HTTP 401" in str(info.value)
    assert "***" in str(info.value)
    assert info.value.fix is not None and "api_key" in info.value.fix
    for text in (str(info.value), repr(info.value), repr(emb), caplog.text):
        assert KEY not in text


async def test_timeout_is_not_retried(srv: OpenAICompatibleServer) -> None:
    emb = OpenAIEmbedder(
        base_url=srv.base_url,
        model="m",
        api_key=KEY,
        dimensions=4,
        timeout=0.3,
        backoff_base=0.01,
    )
    srv.hang_next(1, seconds=30)
    started = time.monotonic()
    with pytest.raises(EmbedderError, match=r"no response .* within 0.3s"):
        await emb.embed(["x"])
    assert time.monotonic() - started < 2.0
    assert len(srv.requests) == 1
    # The next request is served normally.
    assert (await emb.embed(["y"])).shape == (1, 4)
    await emb.close()


async def test_connection_refused_is_retried_then_reported() -> None:
    emb = OpenAIEmbedder(
        base_url=f"http://127.0.0.1:{closed_port()}/v1",
        model="m",
        dimensions=4,
        max_retries=2,
        backoff_base=0.01,
    )
    with pytest.raises(EmbedderError) as info:
        await emb.embed(["x"])
    await emb.close()
    assert "cannot reach" in str(info.value)
    assert "3 attempt(s)" in str(info.value)


async def test_health(srv: OpenAICompatibleServer, embedder: OpenAIEmbedder) -> None:
    assert (await embedder.health()).ok
    assert srv.requests[-1].path == "/v1/models"
    down = OpenAIEmbedder(base_url=f"http://127.0.0.1:{closed_port()}/v1", model="m")
    status = await down.health()
    assert not status.ok
    await down.close()


async def test_closed_embedder_raises(embedder: OpenAIEmbedder) -> None:
    await embedder.close()
    with pytest.raises(EmbedderError, match="closed"):
        await embedder.embed(["x"])


async def test_rejects_bad_input(embedder: OpenAIEmbedder) -> None:
    with pytest.raises(ValidationError) as info:
        await embedder.embed("one string")
    assert info.value.field == "texts"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"model": ""}, "model"),
        ({"model": "m", "base_url": "ftp://x"}, "base_url"),
        ({"model": "m", "timeout": 0}, "timeout"),
        ({"model": "m", "max_retries": -1}, "max_retries"),
        ({"model": "m", "batch_size": 0}, "batch_size"),
        ({"model": "m", "dimensions": 0}, "dimensions"),
        ({"model": "m", "send_dimensions": True}, "dimensions"),
    ],
)
def test_rejects_bad_options(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        OpenAIEmbedder(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


def test_usable_from_successive_event_loops(srv: OpenAICompatibleServer) -> None:
    # Like a session-scoped fixture used by tests that each get their own loop.
    emb = OpenAIEmbedder(base_url=srv.base_url, model="m", api_key=KEY, dimensions=4)
    first = asyncio.run(emb.embed(["same"]))
    second = asyncio.run(emb.embed(["same"]))
    asyncio.run(emb.close())
    np.testing.assert_array_equal(first, second)
    assert len(srv.requests) == 2
