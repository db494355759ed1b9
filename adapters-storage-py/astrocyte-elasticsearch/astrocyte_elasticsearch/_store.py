"""The Elasticsearch / OpenSearch :class:`~astrocyte.spi.DocumentStore`."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from astrocyte.errors import BankNotFound, ConfigError, StoreError
from astrocyte.spi import SPI_VERSION, BankInfo, HealthStatus, MemoryRecord, RecordFilter, ScoredId
from astrocyte.stores.memory import check_filter, check_limit, check_records
from astrocyte.stores.text import informative, keyword_terms, tokenize
from elasticsearch import AsyncElasticsearch, BadRequestError, ConflictError, NotFoundError

from astrocyte_elasticsearch._encoding import (
    bank_doc_id,
    bank_filter,
    doc_id,
    filter_clauses,
    from_payload,
    keyword,
    to_document,
)
from astrocyte_elasticsearch._options import Options, parse_options
from astrocyte_elasticsearch._schema import (
    SCHEMA_VERSION,
    AnalysisMode,
    Layout,
    analyze_probe,
    banks_template,
    memories_template,
)
from astrocyte_elasticsearch._transport import build_client, detect_flavor, translate_errors

#: Documents per bulk request; a retain batch larger than this goes in several requests
#: (and is still undone as a whole if any of them fails).
BULK_CHUNK = 1000

#: Page size of scans that must see every match (find without a limit, list_banks).
PAGE = 5000

Query = dict[str, Any]


def bm25_idf(docs: int, matching: int) -> float:
    """Lucene's BM25 IDF for a term in ``matching`` of ``docs`` documents."""
    return math.log(1.0 + (docs - matching + 0.5) / (matching + 0.5))


class ElasticsearchDocumentStore:
    """A :class:`~astrocyte.spi.DocumentStore` on Elasticsearch 8 or OpenSearch 2.

    All banks share one memories index (alias ``<index_prefix>-memories``) filtered by
    a ``bank_id`` keyword; keyword search is the server's BM25. The constructor does no
    I/O: the client connects, detects the flavor and creates the index templates and
    indices on first use.

    Options (all plain scalars, as in YAML): ``url`` (required), ``username`` and
    ``password`` or ``api_key``, ``index_prefix`` ("astrocyte"), ``refresh``
    ("wait_for" | "true" | "false"), ``refresh_interval`` ("1s"), ``timeout_s`` (10),
    ``flavor`` ("auto" | "elasticsearch" | "opensearch"), ``analysis`` ("auto" |
    "server" | "client"), ``verify_certs`` (true), ``ca_certs`` (none).
    """

    SPI_VERSION: ClassVar[int] = SPI_VERSION
    DEFAULT_FLAVOR: ClassVar[str] = "auto"

    def __init__(
        self,
        *,
        url: str | None = None,
        username: str | None = None,
        password: str | None = None,
        api_key: str | None = None,
        index_prefix: str = "astrocyte",
        refresh: str | bool = "wait_for",
        refresh_interval: str = "1s",
        timeout_s: float = 10.0,
        flavor: str | None = None,
        analysis: str = "auto",
        verify_certs: bool | str = True,
        ca_certs: str | None = None,
    ) -> None:
        self._options: Options = parse_options(
            url=url,
            username=username,
            password=password,
            api_key=api_key,
            index_prefix=index_prefix,
            refresh=refresh,
            refresh_interval=refresh_interval,
            timeout_s=timeout_s,
            flavor=self.DEFAULT_FLAVOR if flavor is None else flavor,
            analysis=analysis,
            verify_certs=verify_certs,
            ca_certs=ca_certs,
        )
        self._layout = Layout(self._options.index_prefix)
        self._provider = "opensearch" if self._options.flavor == "opensearch" else "elasticsearch"
        self._client: AsyncElasticsearch | None = None
        self._mode: AnalysisMode | None = None
        self._lock = asyncio.Lock()
        self._closed = False

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(url={self._options.url!r}, index_prefix={self._layout.prefix!r})"

    # ------------------------------------------------------------------ connection

    @property
    def flavor(self) -> str:
        """``"elasticsearch"`` or ``"opensearch"`` once connected (else the option)."""
        return self._provider

    @property
    def analysis_mode(self) -> AnalysisMode | None:
        """``"server"`` or ``"client"`` once connected: who tokenises the text."""
        return self._mode

    def _errors(self) -> Any:
        return translate_errors(self._provider, self._options)

    async def _ready(self) -> AsyncElasticsearch:
        if self._closed:
            raise StoreError(f"{self._provider}: the store is closed")
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is not None:
                return self._client
            opensearch = self._options.flavor == "opensearch"
            client = build_client(self._options, opensearch=opensearch)
            try:
                if self._options.flavor == "auto":
                    detected = await detect_flavor(client, self._options)
                    self._provider = detected
                    if detected == "opensearch":
                        await client.close()
                        client = build_client(self._options, opensearch=True)
                with self._errors():
                    self._mode = await self._ensure_memories(client)
                    await self._ensure_banks(client)
            except BaseException:
                await client.close()
                raise
            self._client = client
            return client

    async def _index_meta(self, client: AsyncElasticsearch, alias: str) -> dict[str, Any] | None:
        """``_meta`` of the index behind ``alias``, or None if there is none yet."""
        try:
            mappings = await client.indices.get_mapping(index=alias)
        except NotFoundError:
            return None
        [index_body] = list(mappings.body.values())
        meta = index_body.get("mappings", {}).get("_meta") or {}
        schema = meta.get("astrocyte_schema")
        if schema != SCHEMA_VERSION:
            raise ConfigError(
                "index_prefix",
                f"index {alias!r} has schema version {schema!r}; this adapter uses "
                f"{SCHEMA_VERSION}",
                fix="use another index_prefix, or upgrade astrocyte-elasticsearch",
            )
        return dict(meta)

    async def _put_template(self, client: AsyncElasticsearch, name: str, body: Query) -> None:
        try:
            existing = await client.indices.get_index_template(name=name)
            versions = [t["index_template"].get("version") for t in existing["index_templates"]]
        except NotFoundError:
            versions = []
        if any(isinstance(v, int) and v > SCHEMA_VERSION for v in versions):
            raise ConfigError(
                "index_prefix",
                f"index template {name!r} belongs to a newer adapter version",
                fix="use another index_prefix, or upgrade astrocyte-elasticsearch",
            )
        await client.indices.put_index_template(name=name, body=body)

    async def _create_index(self, client: AsyncElasticsearch, index: str) -> None:
        try:
            await client.indices.create(index=index)
        except BadRequestError as exc:
            # Another store created it first: fine, it came from the same template.
            if exc.error != "resource_already_exists_exception":
                raise

    async def _ensure_memories(self, client: AsyncElasticsearch) -> AnalysisMode:
        layout, wanted = self._layout, self._options.analysis
        meta = await self._index_meta(client, layout.memories)
        if meta is None:
            mode: AnalysisMode
            if wanted == "auto":
                mode = "server" if await self._server_analysis_available(client) else "client"
            else:
                mode = wanted
            template = memories_template(layout, mode, self._options.refresh_interval)
            await self._put_template(client, layout.memories, template)
            await self._create_index(client, layout.memories_index)
            meta = await self._index_meta(client, layout.memories)
            assert meta is not None
        found = meta.get("analysis")
        if found not in ("server", "client"):
            raise ConfigError("index_prefix", f"index {layout.memories!r} has no analysis mode")
        if wanted != "auto" and wanted != found:
            raise ConfigError(
                "analysis",
                f"index {layout.memories!r} was created with analysis {found!r}",
                fix=f"set analysis to {found!r} or 'auto', or use another index_prefix",
            )
        return "server" if found == "server" else "client"

    async def _server_analysis_available(self, client: AsyncElasticsearch) -> bool:
        try:
            await client.indices.analyze(body=analyze_probe())
        except BadRequestError:
            return False
        return True

    async def _ensure_banks(self, client: AsyncElasticsearch) -> None:
        layout = self._layout
        if await self._index_meta(client, layout.banks) is None:
            template = banks_template(layout, self._options.refresh_interval)
            await self._put_template(client, layout.banks, template)
            await self._create_index(client, layout.banks_index)
            await self._index_meta(client, layout.banks)

    @property
    def _refresh(self) -> Literal["wait_for", "true", "false"]:
        return self._options.refresh

    # ------------------------------------------------------------------ banks

    async def create_bank(self, bank_id: str) -> None:
        """Register the bank (idempotent); the registry keeps its creation time."""
        client = await self._ready()
        doc = {"bank_id": bank_id, "created_at": datetime.now(UTC).isoformat()}
        with self._errors(), contextlib.suppress(ConflictError):  # already registered
            await client.create(
                index=self._layout.banks,
                id=bank_doc_id(bank_id),
                document=doc,
                refresh=self._refresh,
            )

    async def bank_exists(self, bank_id: str) -> bool:
        """Whether ``create_bank`` was called for this bank (a realtime GET)."""
        client = await self._ready()
        with self._errors():
            return bool(await client.exists(index=self._layout.banks, id=bank_doc_id(bank_id)))

    async def list_banks(self) -> list[BankInfo]:
        """Every registered bank with its memory count, ordered by bank id."""
        client = await self._ready()
        banks: list[tuple[str, datetime]] = []
        counts: dict[str, int] = {}
        with self._errors():
            after: list[Any] | None = None
            while True:
                body: Query = {
                    "size": PAGE,
                    "sort": [{"bank_id": "asc"}],
                    "_source": ["bank_id", "created_at"],
                    "query": {"match_all": {}},
                }
                if after is not None:
                    body["search_after"] = after
                hits = (await client.search(index=self._layout.banks, body=body))["hits"]["hits"]
                for hit in hits:
                    src = hit["_source"]
                    banks.append((src["bank_id"], datetime.fromisoformat(src["created_at"])))
                if len(hits) < PAGE:
                    break
                after = hits[-1]["sort"]
            key: dict[str, Any] | None = None
            while True:
                composite: Query = {
                    "size": PAGE,
                    "sources": [{"b": {"terms": {"field": "bank_id"}}}],
                }
                if key is not None:
                    composite["after"] = key
                resp = await client.search(
                    index=self._layout.memories,
                    body={"size": 0, "aggs": {"banks": {"composite": composite}}},
                )
                agg = resp["aggregations"]["banks"]
                for bucket in agg["buckets"]:
                    counts[bucket["key"]["b"]] = bucket["doc_count"]
                key = agg.get("after_key")
                if not agg["buckets"] or key is None:
                    break
        # The keyword sort is by UTF-8 bytes, which is code-point order: same as sorted().
        return [
            BankInfo(bank_id=b, memory_count=counts.get(b, 0), created_at=created)
            for b, created in sorted(banks)
        ]

    async def _missing_banks(self, client: AsyncElasticsearch, bank_ids: list[str]) -> list[str]:
        resp = await client.mget(
            index=self._layout.banks, ids=[bank_doc_id(b) for b in bank_ids], source=False
        )
        return [b for b, doc in zip(bank_ids, resp["docs"], strict=True) if not doc.get("found")]

    # ------------------------------------------------------------------ writes

    def _indexed_text(self, text: str) -> str:
        # Client mode: the core's own tokens go to a whitespace-analysed field.
        return text if self._mode == "server" else " ".join(tokenize(text))

    async def put(self, records: Sequence[MemoryRecord]) -> None:
        """Insert or replace records with the bulk API, all-or-nothing: if any item
        fails, the items already written are undone (replaced ones restored) and
        :class:`StoreError` is raised."""
        check_records(records)
        if not records:
            return
        client = await self._ready()
        latest: dict[str, MemoryRecord] = {}
        for record in records:
            latest[doc_id(record.bank_id, record.id)] = record  # last one of an id wins
        with self._errors():
            missing = await self._missing_banks(client, sorted({r.bank_id for r in records}))
            if missing:
                raise BankNotFound(missing[0])
            previous = await self._sources(client, list(latest))
            stored_us = time.time_ns() // 1000
            ops: list[tuple[str, Query | None]] = [
                (key, to_document(r, self._indexed_text(r.text), stored_us))
                for key, r in latest.items()
            ]
            await self._bulk_all_or_nothing(client, ops, previous)

    async def _sources(self, client: AsyncElasticsearch, keys: list[str]) -> dict[str, Query]:
        """Current documents of ``keys`` (to restore them if a write must be undone)."""
        found: dict[str, Query] = {}
        for start in range(0, len(keys), PAGE):
            resp = await client.mget(index=self._layout.memories, ids=keys[start : start + PAGE])
            for doc in resp["docs"]:
                if doc.get("found"):
                    found[doc["_id"]] = doc["_source"]
        return found

    async def _bulk(
        self, client: AsyncElasticsearch, ops: Sequence[tuple[str, Query | None]]
    ) -> list[Query]:
        """One bulk request: an index op per document, a delete op per None."""
        lines: list[Query] = []
        for key, doc in ops:
            if doc is None:
                lines.append({"delete": {"_index": self._layout.memories, "_id": key}})
            else:
                lines.append({"index": {"_index": self._layout.memories, "_id": key}})
                lines.append(doc)
        resp = await client.bulk(operations=lines, refresh=self._refresh)
        return [next(iter(item.values())) for item in resp["items"]]

    async def _bulk_all_or_nothing(
        self,
        client: AsyncElasticsearch,
        ops: list[tuple[str, Query | None]],
        previous: Mapping[str, Query],
    ) -> None:
        done: list[str] = []
        for start in range(0, len(ops), BULK_CHUNK):
            chunk = ops[start : start + BULK_CHUNK]
            results = await self._bulk(client, chunk)
            failed = [r for r in results if r.get("status", 500) >= 300]
            done.extend(
                key
                for (key, _), r in zip(chunk, results, strict=True)
                if r.get("status", 500) < 300
            )
            if failed:
                # Undo: documents that existed before get their old version back.
                undo = [(key, previous.get(key)) for key in done]
                if undo:
                    await self._bulk(client, undo)
                error = failed[0].get("error") or {}
                raise StoreError(
                    f"{self._provider}: {len(failed)} of {len(chunk)} documents were rejected "
                    f"({error.get('type')}: {error.get('reason')}); nothing was written"
                )

    async def delete(self, bank_id: str, ids: Sequence[str]) -> int:
        """Delete these ids from the bank; returns how many existed."""
        unique = list(dict.fromkeys(ids))
        if not unique:
            return 0
        client = await self._ready()
        deleted = 0
        with self._errors():
            for start in range(0, len(unique), BULK_CHUNK):
                chunk = [(doc_id(bank_id, i), None) for i in unique[start : start + BULK_CHUNK]]
                results = await self._bulk(client, chunk)
                deleted += sum(1 for r in results if r.get("result") == "deleted")
        return deleted

    # ------------------------------------------------------------------ reads

    async def get(self, bank_id: str, ids: Sequence[str]) -> list[MemoryRecord]:
        """The records of ``ids`` that exist in the bank, in the order asked."""
        if not ids:
            return []
        client = await self._ready()
        keys = list(dict.fromkeys(doc_id(bank_id, i) for i in ids))
        with self._errors():
            found = await self._sources(client, keys)
        records = {key: from_payload(src["payload"]) for key, src in found.items()}
        out: list[MemoryRecord] = []
        for memory_id in ids:
            record = records.get(doc_id(bank_id, memory_id))
            if record is not None and record.bank_id == bank_id:
                out.append(record)
        return out

    async def count(self, bank_id: str) -> int:
        """Number of memories in the bank."""
        client = await self._ready()
        with self._errors():
            resp = await client.count(
                index=self._layout.memories, body={"query": bank_filter(bank_id)}
            )
        return int(resp["count"])

    async def find(
        self,
        bank_id: str,
        where: RecordFilter,
        *,
        limit: int | None = None,
        order: Literal["newest", "oldest"] | None = None,
    ) -> list[str]:
        """Ids matching ``where``; ``order`` sorts by ``occurred_at``, undated last."""
        check_filter(where)
        check_limit(limit)
        if limit == 0:
            return []
        client = await self._ready()
        sort: list[Query] = []
        if order is not None:
            direction = "desc" if order == "newest" else "asc"
            sort.append({"occurred_us": {"order": direction, "missing": "_last"}})
        sort.append({"doc_key": "asc"})  # a total order, so search_after pages are exact
        query = {"bool": {"filter": filter_clauses(bank_id, where)}}
        out: list[str] = []
        after: list[Any] | None = None
        with self._errors():
            while limit is None or len(out) < limit:
                size = PAGE if limit is None else min(PAGE, limit - len(out))
                body: Query = {
                    "size": size,
                    "query": query,
                    "sort": sort,
                    "_source": ["memory_id"],
                    "track_total_hits": False,
                }
                if after is not None:
                    body["search_after"] = after
                hits = (await client.search(index=self._layout.memories, body=body))["hits"]["hits"]
                out.extend(hit["_source"]["memory_id"] for hit in hits)
                if len(hits) < size:
                    break
                after = hits[-1]["sort"]
        return out

    async def find_by_content_hash(self, bank_id: str, hashes: Sequence[str]) -> dict[str, str]:
        """Hash -> id of the earliest stored memory holding it: a ``terms`` lookup on
        the ``content_hash`` keyword, collapsed to one hit per hash."""
        wanted = [h for h in dict.fromkeys(hashes) if h]
        if not wanted:
            return {}
        client = await self._ready()
        by_keyword = {keyword(h): h for h in wanted}
        found: dict[str, str] = {}
        keys = list(by_keyword)
        with self._errors():
            for start in range(0, len(keys), PAGE):
                chunk = keys[start : start + PAGE]
                body: Query = {
                    "size": len(chunk),
                    "query": {
                        "bool": {
                            "filter": [bank_filter(bank_id), {"terms": {"content_hash": chunk}}]
                        }
                    },
                    "collapse": {"field": "content_hash"},
                    "sort": [{"stored_us": "asc"}, {"doc_key": "asc"}],
                    "_source": ["memory_id", "content_hash"],
                    "track_total_hits": False,
                }
                resp = await client.search(index=self._layout.memories, body=body)
                for hit in resp["hits"]["hits"]:
                    src = hit["_source"]
                    found[by_keyword[src["content_hash"]]] = src["memory_id"]
        return found

    async def keyword_search(
        self, bank_id: str, query: str, *, limit: int, where: RecordFilter | None = None
    ) -> list[ScoredId]:
        """BM25 matches of the query's words (``match`` queries, never query syntax),
        scored with the bank's own term statistics; words in over 30% of the bank's
        memories are dropped while a rarer one exists."""
        check_limit(limit)
        check_filter(where)
        if limit == 0:
            return []
        words = [q for q in (self._query_text(w) for w in keyword_terms(query)) if q]
        if not words:
            return []
        client = await self._ready()
        with self._errors():
            boosts = await self._bank_boosts(client, bank_id, words)
            if not boosts:
                return []
            should = [
                {"match": {"text": {"query": q, "boost": boost}}} for q, boost in boosts.items()
            ]
            body: Query = {
                "size": limit,
                "query": {
                    "bool": {
                        "should": should,
                        "minimum_should_match": 1,
                        "filter": filter_clauses(bank_id, where),
                    }
                },
                "sort": [{"_score": "desc"}, {"doc_key": "asc"}],
                "_source": ["memory_id"],
                "track_total_hits": False,
            }
            hits = (await client.search(index=self._layout.memories, body=body))["hits"]["hits"]
        return [ScoredId(hit["_source"]["memory_id"], float(hit["_score"])) for hit in hits]

    def _query_text(self, word: str) -> str:
        return word if self._mode == "server" else " ".join(tokenize(word))

    async def _bank_boosts(
        self, client: AsyncElasticsearch, bank_id: str, words: list[str]
    ) -> dict[str, float]:
        """The words to match, each with the boost that turns the shared index's IDF
        into the bank's own.

        Two requests run concurrently: a ``filters`` aggregation counting each word's
        memories in the bank (plus the bank's size), and ``_termvectors`` on an
        artificial document of the words, which returns the exact index-wide
        statistics Lucene's BM25 uses. Words common in the bank are dropped (the 30%
        rule), and so are words no memory of the bank contains."""
        per_word = {str(i): {"match": {"text": {"query": q}}} for i, q in enumerate(words)}
        counts_request = client.search(
            index=self._layout.memories,
            body={
                "size": 0,
                "track_total_hits": True,
                "query": bank_filter(bank_id),
                "aggs": {"words": {"filters": {"filters": per_word}}},
            },
        )
        stats_request = client.termvectors(
            index=self._layout.memories,
            body={
                "doc": {"text": " ".join(words)},
                "fields": ["text"],
                "term_statistics": True,
                "field_statistics": True,
                "positions": True,
                "offsets": False,
                "payloads": False,
            },
        )
        counts, stats = await asyncio.gather(counts_request, stats_request)
        bank_size = int(counts["hits"]["total"]["value"])
        buckets = counts["aggregations"]["words"]["buckets"]
        in_bank = [(str(i), int(buckets[str(i)]["doc_count"])) for i in range(len(words))]
        vectors = stats["term_vectors"].get("text", {})
        index_docs = int(vectors.get("field_statistics", {}).get("doc_count", 0))
        # Each word analyses to one token, at the word's position (stopwords leave gaps).
        doc_freq: dict[int, int] = {}
        for term in vectors.get("terms", {}).values():
            for token in term.get("tokens", []):
                doc_freq[int(token["position"])] = int(term.get("doc_freq", 0))
        boosts: dict[str, float] = {}
        for key in informative(in_bank, bank_size):
            i = int(key)
            if buckets[key]["doc_count"] == 0:
                continue
            shared = doc_freq.get(i, 0)
            if shared <= 0 or index_docs <= 0:
                boosts[words[i]] = 1.0
                continue
            boosts[words[i]] = bm25_idf(bank_size, buckets[key]["doc_count"]) / bm25_idf(
                index_docs, shared
            )
        return boosts

    # ------------------------------------------------------------------ lifecycle

    async def health(self) -> HealthStatus:
        """Cluster health of the node: ok unless unreachable or red."""
        try:
            client = await self._ready()
            with self._errors():
                resp = await client.cluster.health(index=self._layout.memories)
        except Exception as exc:
            return HealthStatus(ok=False, detail=str(exc))
        status = resp.get("status")
        return HealthStatus(ok=status in ("green", "yellow"), detail=f"{self._provider} {status}")

    async def close(self) -> None:
        """Close the HTTP session; the store is unusable afterwards."""
        self._closed = True
        client, self._client = self._client, None
        if client is not None:
            await client.close()


class OpenSearchDocumentStore(ElasticsearchDocumentStore):
    """The same store with ``flavor: opensearch`` as its default (entry point
    ``opensearch``), so no detection request is made."""

    DEFAULT_FLAVOR: ClassVar[str] = "opensearch"
