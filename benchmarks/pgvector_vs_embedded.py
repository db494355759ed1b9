"""pgvector against the embedded default: write throughput and recall latency by size.

    python benchmarks/pgvector_vs_embedded.py --dsn postgresql://... --sizes 10000,100000
    python benchmarks/pgvector_vs_embedded.py --dsn ... --sizes 1000000 --stores pgvector

For each store and size, one bank is filled to that size and measured:

* **write**: records + vectors per second through the SPI (``upsert`` + ``put`` of
  5,000-memory batches into the already filled, indexed bank — what retain pays),
  embedding excluded: both stores get the same precomputed vectors and the embedder's
  cost is identical for both (see ``astrocyte bench perf`` for it). The rest of each
  size is bulk loaded (pgvector: ``bulk_upsert`` with one HNSW build), reported as
  ``bulk_load_per_s``;
* **vector search**: ``VectorStore.search`` p50/p95 (limit 40, what recall asks for),
  and the approximate index's recall@10 against exact search over the same vectors;
* **recall**: the full ``Astrocyte.recall`` p50/p95 — query embedding with the real
  local model, semantic + keyword + graph + temporal strategies, RRF fusion, hydration.

Texts are the core perf suite's seeded chat sentences. Embedding a million of them would
take an hour on two cores, so vectors are built from a pool of real embeddings: each
memory's vector is a pool embedding plus a little of another and some noise,
re-normalised (clusters like real data, not uniform random points, which would flatter
neither store). Queries are real embeddings of the suite's questions.
Results go to stdout and to ``benchmarks/results/pgvector_vs_embedded.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from astrocyte import Astrocyte, load_config
from astrocyte.bench.perf import percentile, question, sentence
from astrocyte.embedders import LocalOnnxEmbedder
from astrocyte.spi import MemoryRecord, VectorItem
from astrocyte.stores.memory import InMemoryGraphStore
from astrocyte.stores.storeset import StoreSet

RESULTS = Path(__file__).parent / "results" / "pgvector_vs_embedded.json"
POOL = 4000
QUERIES = 200
SEARCH_LIMIT = 40
BATCH = 5000
START = datetime(2023, 1, 1, tzinfo=UTC)


@dataclass
class Corpus:
    """Precomputed memories: texts, vectors and query vectors."""

    pool: np.ndarray
    queries: list[str]
    query_vectors: np.ndarray
    rng_seed: int

    def batch(
        self, bank: str, start: int, stop: int
    ) -> tuple[list[MemoryRecord], list[VectorItem]]:
        """Records and vectors of memories ``start..stop``, which must lie in one block of
        ``BATCH``: each block is generated from its own seed, so a memory's content does
        not depend on how a run was split into sizes."""
        block, first_offset = divmod(start, BATCH)
        if stop > (block + 1) * BATCH:
            raise ValueError("a batch must not cross a block boundary")
        rng = np.random.default_rng(self.rng_seed * 1_000_003 + block)
        first = rng.integers(0, len(self.pool), BATCH)
        second = rng.integers(0, len(self.pool), BATCH)
        noise = rng.normal(0, 0.02, (BATCH, self.pool.shape[1])).astype(np.float32)
        take = slice(first_offset, stop - block * BATCH)
        vectors = self.pool[first[take]] + 0.3 * self.pool[second[take]] + noise[take]
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = vectors.astype(np.float32)
        text_rng = random.Random(self.rng_seed * 1_000_003 + block)
        texts = [sentence(text_rng) for _ in range(stop - block * BATCH)][first_offset:]
        records, items = [], []
        for offset, text in enumerate(texts):
            index = start + offset
            mid = f"m{index:08d}"
            when = START + timedelta(minutes=index)
            records.append(
                MemoryRecord(
                    id=mid,
                    bank_id=bank,
                    text=text,
                    source_id=f"s{index // 10:07d}",
                    chunk_index=index % 10,
                    content_type="text",
                    created_at=when,
                    occurred_at=when,
                    content_hash=uuid.uuid4().hex,
                )
            )
            items.append(VectorItem(id=mid, bank_id=bank, vector=vectors[offset], occurred_at=when))
        return records, items

    def all_vectors(self, size: int) -> np.ndarray:
        """Every vector of a bank of ``size`` (for exact ground truth)."""
        parts = []
        for start in range(0, size, BATCH):
            _, items = self.batch("x", start, min(size, start + BATCH))
            parts.append(np.stack([item.vector for item in items]))
        return np.concatenate(parts)


async def build_corpus(embedder: LocalOnnxEmbedder, seed: int) -> Corpus:
    """Embed the pool and the queries with the real model."""
    rng = random.Random(seed)
    pool_texts = [sentence(rng) for _ in range(POOL)]
    queries = [question(rng) for _ in range(QUERIES)]
    pool = np.asarray(await embedder.embed(pool_texts), dtype=np.float32)
    query_vectors = np.asarray(await embedder.embed(queries, kind="query"), dtype=np.float32)
    return Corpus(pool=pool, queries=queries, query_vectors=query_vectors, rng_seed=seed)


def summary(values: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99/mean of latencies in ms."""
    return {
        "p50_ms": round(percentile(values, 50), 2),
        "p95_ms": round(percentile(values, 95), 2),
        "p99_ms": round(percentile(values, 99), 2),
        "mean_ms": round(statistics.fmean(values), 2),
    }


StoreFactory = Callable[[], Awaitable[Any]]


async def measure(
    name: str,
    factory: StoreFactory,
    sizes: Sequence[int],
    corpus: Corpus,
    embedder: LocalOnnxEmbedder,
    exact: bool,
    maintenance: str,
    reuse_bank: str | None = None,
) -> list[dict[str, Any]]:
    """Grow one bank through ``sizes`` in ``factory()``'s store, measuring each size.

    ``reuse_bank``: a bank an earlier run of this script filled (same seed) to
    ``max(sizes)``; it is measured as it is, nothing is written."""
    store = await factory()
    bank = reuse_bank or f"bench-{uuid.uuid4().hex[:8]}"
    await store.create_bank(bank)
    graph = InMemoryGraphStore()
    stores = StoreSet(documents=store, vectors=store, graph=graph)
    brain = Astrocyte(
        load_config({"storage": {"backend": "memory"}}), stores=stores, embedder=embedder
    )
    rows: list[dict[str, Any]] = []
    loaded = max(sizes) if reuse_bank else 0
    if reuse_bank and await store.count(bank) != loaded:
        raise SystemExit(f"{bank} does not hold {loaded} memories")
    try:
        for size in sorted(sizes):
            # Everything but the last block is loaded the fastest way the store offers
            # (pgvector: COPY and one HNSW build); the last block goes through the
            # ordinary upsert + put that retain uses, into the already indexed bank, and
            # is what "write_per_s" measures.
            incremental_from = max(loaded, size - BATCH)
            bulk_started = time.perf_counter()
            bulk_items: list[VectorItem] = []
            while loaded < incremental_from:
                stop = min(incremental_from, (loaded // BATCH + 1) * BATCH)
                records, items = corpus.batch(bank, loaded, stop)
                await store.put(records)
                bulk_items += items
                loaded = stop
            if bulk_items:
                if hasattr(store, "bulk_upsert"):
                    await store.bulk_upsert(
                        bulk_items, rebuild_index=True, maintenance_work_mem=maintenance
                    )
                else:
                    for start in range(0, len(bulk_items), BATCH):
                        await store.upsert(bulk_items[start : start + BATCH])
            bulk_count = len(bulk_items)
            del bulk_items
            bulk_s = time.perf_counter() - bulk_started
            write_s = 0.0
            written = 0
            while loaded < size:
                stop = min(size, (loaded // BATCH + 1) * BATCH)
                records, items = corpus.batch(bank, loaded, stop)
                started = time.perf_counter()
                await store.upsert(items)
                await store.put(records)
                write_s += time.perf_counter() - started
                written += stop - loaded
                loaded = stop
            if hasattr(store, "analyze"):
                await store.analyze()
            searches, found = [], []
            for vector in corpus.query_vectors:
                started = time.perf_counter()
                hits = await store.search(bank, vector, limit=SEARCH_LIMIT)
                searches.append((time.perf_counter() - started) * 1000)
                found.append([hit.id for hit in hits[:10]])
            recalls = []
            for text in corpus.queries:
                started = time.perf_counter()
                await brain.recall(text, bank)
                recalls.append((time.perf_counter() - started) * 1000)
            row: dict[str, Any] = {
                "store": name,
                "size": size,
                "write_per_s": round(written / write_s, 1) if write_s else None,
                "bulk_load_per_s": round(bulk_count / bulk_s, 1) if bulk_count else None,
                "vector_search": summary(searches),
                "recall": summary(recalls),
            }
            if exact:
                matrix = corpus.all_vectors(size)
                scores = matrix @ corpus.query_vectors.T
                truth = np.argpartition(-scores, 10, axis=0)[:10].T  # unordered top 10
                del scores
                overlap = [
                    len({f"m{i:08d}" for i in gold} & set(got)) / 10
                    for gold, got in zip(truth, found, strict=True)
                ]
                row["ann_recall_at_10"] = round(statistics.fmean(overlap), 4)
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        await brain.close()
        await store.close()
    return rows


async def main() -> None:
    """Parse arguments, run each store and size, write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", default=os.environ.get("ASTROCYTE_TEST_PG_DSN"))
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--stores", default="embedded,pgvector")
    parser.add_argument("--hnsw-m", type=int, default=16)
    parser.add_argument("--hnsw-ef-construction", type=int, default=64)
    parser.add_argument("--ef-search", type=int, default=100)
    parser.add_argument(
        "--maintenance-work-mem", default="2GB", help="memory for pgvector's HNSW build"
    )
    parser.add_argument(
        "--reuse",
        metavar="SCHEMA:BANK",
        help="pgvector only: measure a bank an earlier run filled to the largest size",
    )
    parser.add_argument("--no-exact", action="store_true", help="skip ANN recall@10")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    wanted = args.stores.split(",")
    embedder = LocalOnnxEmbedder()
    corpus = await build_corpus(embedder, args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="astrocyte-pgbench-"))
    hnsw = {
        "hnsw_m": args.hnsw_m,
        "hnsw_ef_construction": args.hnsw_ef_construction,
        "ef_search": args.ef_search,
    }

    async def embedded() -> Any:
        from astrocyte.stores.sqlite import SQLiteStore

        return SQLiteStore(workdir / "embedded.db")

    async def pgvector() -> Any:
        from astrocyte_pgvector import PgVectorStore

        if not args.dsn:
            raise SystemExit("pgvector needs --dsn or ASTROCYTE_TEST_PG_DSN")
        schema = args.reuse.split(":")[0] if args.reuse else f"bench_{uuid.uuid4().hex[:8]}"
        return PgVectorStore(dsn=args.dsn, schema=schema, **hnsw)

    factories = {"embedded": embedded, "pgvector": pgvector}
    rows: list[dict[str, Any]] = []
    for name in wanted:
        rows += await measure(
            name,
            factories[name],
            sizes,
            corpus,
            embedder,
            not args.no_exact,
            args.maintenance_work_mem,
            args.reuse.split(":", 1)[1] if args.reuse and name == "pgvector" else None,
        )
    await embedder.close()
    report = {
        "benchmark": "pgvector_vs_embedded",
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _commit(),
        "reused_bank": args.reuse,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "hnsw": hnsw,
        "search_limit": SEARCH_LIMIT,
        "queries": QUERIES,
        "batch": BATCH,
        "graph_store": "in-memory for both (no entities loaded; isolates documents+vectors)",
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    runs = previous.get("runs", []) if isinstance(previous, dict) else []
    runs.append(report)
    args.out.write_text(json.dumps({"runs": runs}, indent=2) + "\n")
    print(f"wrote {args.out}")


def _commit() -> str | None:
    """The checked-out commit, so runs of different code can be told apart."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


if __name__ == "__main__":
    asyncio.run(main())
