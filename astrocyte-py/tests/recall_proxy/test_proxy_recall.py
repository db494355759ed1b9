"""Federated recall: proxy sources served by a real local HTTP server, and external
context, fused with local recall (see docs/federated-recall.md)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from astrocyte import Astrocyte, ValidationError, load_config
from astrocyte.embedders import HashingEmbedder
from astrocyte.recall.proxy import Blocked, ProxySource, check_destination


class SearchServer:
    """A search service on 127.0.0.1 (uvicorn on a thread): ``/search`` answers,
    ``/hang`` never does (until stopped), ``/fail`` answers 500."""

    def __init__(self) -> None:
        self.queries: list[tuple[str, str | None, str | None]] = []
        self._release = threading.Event()
        self.app = Starlette(
            routes=[
                Route("/search", self._search),
                Route("/hang", self._hang),
                Route("/fail", self._fail),
            ]
        )
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    async def _search(self, request: Request) -> Response:
        q = request.query_params.get("q")
        self.queries.append(("search", q, request.headers.get("authorization")))
        return JSONResponse(
            {
                "hits": [
                    {
                        "text": f"Wiki: the Porto office moved in 2021 (asked: {q})",
                        "score": 0.4,
                        "id": "doc-7",
                        "metadata": {"url": "https://wiki/porto", "nested": {"x": 1}},
                    },
                    {"text": "Wiki: Porto office parking rules", "score": 0.9},
                    {"score": 1.0},  # no text: skipped
                ]
            }
        )

    async def _hang(self, request: Request) -> Response:
        self.queries.append(("hang", request.query_params.get("q"), None))
        # Held until the server stops (a thread wait: the event is set from outside).
        await asyncio.to_thread(self._release.wait, 30)
        return JSONResponse({"hits": []})

    async def _fail(self, request: Request) -> Response:
        self.queries.append(("fail", request.query_params.get("q"), None))
        return JSONResponse({"error": "boom"}, status_code=500)

    def __enter__(self) -> SearchServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, log_config=None, log_level="warning", access_log=False, lifespan="off"
        )
        self._server = server = uvicorn.Server(config)

        def run() -> None:
            try:
                asyncio.run(server.serve(sockets=[sock]))
            finally:
                sock.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "search server did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        assert self._server is not None and self._thread is not None
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture(scope="module")
def server() -> Iterator[SearchServer]:
    with SearchServer() as s:
        yield s


def _proxy(url: str, bank: str = "maya", **extra: Any) -> dict[str, Any]:
    return {"type": "proxy", "url": url, "target_bank_template": bank, **extra}


@pytest.fixture
async def make_brain(tmp_path: Path) -> AsyncIterator[Any]:
    brains: list[Astrocyte] = []

    async def make(sources: dict[str, Any]) -> Astrocyte:
        config = load_config({"storage": {"backend": "memory"}, "sources": sources})
        brain = Astrocyte(config, embedder=HashingEmbedder())
        brains.append(brain)
        await brain.retain("Maya moved to the Porto office last spring.", "maya")
        await brain.retain("Maya likes long walks by the river.", "maya")
        return brain

    yield make
    for brain in brains:
        await brain.close()


async def test_proxy_hits_are_fused_and_labelled(server: SearchServer, make_brain: Any) -> None:
    brain = await make_brain(
        {
            "wiki": _proxy(
                server.url("/search?q={query}"), headers={"Authorization": "Bearer s3cret"}
            )
        }
    )
    result = await brain.recall("Porto office & parking?", "maya")
    # The query arrives URL-decoded intact, with the configured header.
    assert ("search", "Porto office & parking?", "Bearer s3cret") in server.queries
    [report] = result.proxies
    assert (report.source_id, report.bank_id, report.status, report.hits) == (
        "wiki",
        "maya",
        "ok",
        2,
    )
    origins = {h.origin for h in result.hits}
    assert origins == {"local", "proxy:wiki"}
    proxied = [h for h in result.hits if h.origin == "proxy:wiki"]
    # Ordered by the proxy's scores; ids are synthetic, the answer's id when it has one.
    assert [h.memory_id for h in proxied] == ["proxy:wiki:1", "proxy:wiki:doc-7"]
    assert proxied[0].ranks == {"proxy:wiki": 1}
    assert proxied[0].provenance.source_id == "proxy:wiki"
    assert proxied[0].provenance.bank_id == "maya"
    # Non-scalar metadata from the proxy is dropped, scalars kept.
    assert proxied[1].provenance.metadata == {"url": "https://wiki/porto"}
    local = [h for h in result.hits if h.origin == "local"]
    assert local[0].text.startswith("Maya moved to the Porto office")
    # Fused: the best local memory (several strategies agree) outranks a proxy hit
    # that only one ranking returned.
    assert result.hits[0].origin == "local"


async def test_proxy_only_serves_its_target_bank(server: SearchServer, make_brain: Any) -> None:
    brain = await make_brain({"wiki": _proxy(server.url("/search"), bank="user-{user}")})
    before = len(server.queries)
    result = await brain.recall("Porto", "maya")
    assert result.proxies == [] and len(server.queries) == before
    await brain.retain("Bob's notes on Porto", "user-bob")
    result = await brain.recall("Porto", "user-bob")
    assert [p.status for p in result.proxies] == ["ok"]
    # Without {query} the query is sent as ?q=.
    assert server.queries[-1][1] == "Porto"


async def test_hanging_proxy_times_out_and_local_results_return(
    server: SearchServer, make_brain: Any
) -> None:
    brain = await make_brain({"slow": _proxy(server.url("/hang?q={query}"), timeout_seconds=0.5)})
    started = time.perf_counter()
    result = await brain.recall("Porto office", "maya")
    elapsed = time.perf_counter() - started
    assert elapsed < 3
    [report] = result.proxies
    assert report.status == "timeout" and report.hits == 0
    assert 400 <= report.elapsed_ms < 3000
    assert result.hits and {h.origin for h in result.hits} == {"local"}


async def test_failing_proxy_is_reported_not_raised(server: SearchServer, make_brain: Any) -> None:
    brain = await make_brain(
        {
            "broken": _proxy(server.url("/fail?q={query}")),
            "wiki": _proxy(server.url("/search?q={query}")),
            "gone": _proxy("http://127.0.0.1:1/nothing?q={query}", timeout_seconds=2),
        }
    )
    result = await brain.recall("Porto office", "maya")
    status = {p.source_id: (p.status, p.error) for p in result.proxies}
    assert status["broken"] == ("error", "HTTP 500")
    assert status["wiki"][0] == "ok"
    assert status["gone"][0] == "error"
    assert "proxy:wiki" in {h.origin for h in result.hits}


async def test_ssrf_guard_blocks_metadata_address_without_a_request(
    make_brain: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import httpx

    sent: list[str] = []
    original = httpx.AsyncClient.stream

    def spy(self: httpx.AsyncClient, method: str, url: Any, **kwargs: Any) -> Any:
        sent.append(str(url))
        return original(self, method, url, **kwargs)

    monkeypatch.setattr(httpx.AsyncClient, "stream", spy)
    brain = await make_brain(
        {"imds": _proxy("http://169.254.169.254/latest/meta-data?q={query}", timeout_seconds=2)}
    )
    result = await brain.recall("Porto", "maya")
    [report] = result.proxies
    assert report.status == "blocked" and "169.254.169.254" in (report.error or "")
    assert sent == []
    assert result.hits and all(h.origin == "local" for h in result.hits)


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/",
        "http://[fe80::1]/",
        "http://[fd00:ec2::254]/",
        "http://0.0.0.0:8080/",
        "http://[::ffff:169.254.169.254]/",
    ],
)
async def test_ssrf_guard_addresses(url: str) -> None:
    with pytest.raises(Blocked):
        await check_destination(url, allow_private_network=False)
    await check_destination(url, allow_private_network=True)


async def test_ssrf_guard_allows_loopback_and_private() -> None:
    for url in ("http://127.0.0.1:9/", "http://10.0.0.5/", "http://localhost:9/"):
        await check_destination(url, allow_private_network=False)


def test_proxy_source_target_matching_and_url() -> None:
    source = ProxySource("wiki", "http://h/s?q={query}", {}, 1.0, "support-{customer}")
    assert source.applies_to("support-acme")
    assert not source.applies_to("support-")
    assert not source.applies_to("tenant/support-acme")
    assert not source.applies_to("sales-acme")
    assert source.request_url("a b/c?&") == "http://h/s?q=a%20b%2Fc%3F%26"


async def test_external_context_is_fused_and_labelled(brain: Astrocyte) -> None:
    await brain.retain("Maya moved to the Porto office last spring.", "maya")
    result = await brain.recall(
        "Porto office",
        "maya",
        external_context=[
            {"text": "CRM: Maya's contract renews in June", "source": "crm", "score": 0.2},
            {"text": "Calendar: Porto office visit on Friday", "score": 0.8},
        ],
    )
    external = [h for h in result.hits if h.origin == "external"]
    assert [h.text for h in external] == [
        "Calendar: Porto office visit on Friday",
        "CRM: Maya's contract renews in June",
    ]
    assert [h.memory_id for h in external] == ["external:1", "external:2"]
    assert external[0].ranks == {"external": 1}
    assert external[1].provenance.source_id == "crm"
    assert external[0].provenance.source_id == "external"
    assert result.hits[0].origin == "local"
    assert result.proxies == []


async def test_external_context_across_banks(brain: Astrocyte) -> None:
    await brain.retain("Maya moved to Porto.", "maya")
    await brain.retain("Bob moved to Lisbon.", "bob")
    result = await brain.recall(
        "moved", banks=["maya", "bob"], external_context=["HR: Ana moved to Braga"]
    )
    by_origin = {h.origin: h for h in result.hits}
    assert set(by_origin) == {"local", "external"}
    assert by_origin["external"].ranks == {"external": 1}
    assert by_origin["external"].provenance.bank_id == ""


async def test_external_context_is_validated(brain: Astrocyte) -> None:
    await brain.retain("x", "maya")
    for bad in ("just a string", [{"text": ""}], [{"text": "a", "bogus": 1}], [3]):
        with pytest.raises(ValidationError):
            await brain.recall("x", "maya", external_context=bad)  # type: ignore[arg-type]


async def test_hard_filters_apply_to_outside_hits(brain: Astrocyte) -> None:
    await brain.retain("Porto office notes", "maya", tags=["work"])
    result = await brain.recall(
        "Porto office", "maya", tags=["work"], external_context=["Porto office rumours"]
    )
    # The external hit carries no tags, so it cannot pass a tag filter.
    assert [h.origin for h in result.hits] == ["local"]


async def test_reflect_accepts_external_context(brain: Astrocyte) -> None:
    await brain.retain("Maya moved to the Porto office.", "maya")
    answer = await brain.reflect(
        "Where did Maya move?", "maya", external_context=["Ticket: Maya asked for a desk"]
    )
    assert {e.origin for e in answer.evidence} == {"local", "external"}
