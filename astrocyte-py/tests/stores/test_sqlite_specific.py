"""Behaviour specific to the embedded SQLite store: durability, WAL, atomicity on disk,
crash safety, concurrency and the in-process vector cache."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from astrocyte.errors import BankNotFound, StoreError, ValidationError
from astrocyte.spi import (
    Entity,
    EntityLink,
    MemoryRecord,
    RecordFilter,
    Relation,
    VectorItem,
)
from astrocyte.stores.sqlite import SCHEMA_VERSION, SQLiteStore

T0 = datetime(2024, 5, 1, tzinfo=UTC)
ALL_TABLES = (
    "memories",
    "memory_tags",
    "vectors",
    "vector_banks",
    "entities",
    "entity_links",
    "relations",
)


def rec(bank: str, memory_id: str, text: str = "", **kw: object) -> MemoryRecord:
    return MemoryRecord(
        id=memory_id,
        bank_id=bank,
        text=text or f"memory {memory_id}",
        source_id="s",
        chunk_index=0,
        content_type="text",
        created_at=T0,
        **kw,  # type: ignore[arg-type]
    )


def vec(bank: str, memory_id: str, values: npt.ArrayLike, **kw: object) -> VectorItem:
    return VectorItem(memory_id, bank, np.asarray(values, dtype=np.float32), **kw)  # type: ignore[arg-type]


def table_counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ALL_TABLES}


def fts_hits(path: Path, word: str) -> int:
    with sqlite3.connect(path) as conn:
        row = conn.execute(
            "SELECT count(*) FROM memories_fts WHERE memories_fts MATCH ?", (f'"{word}"',)
        ).fetchone()
        return int(row[0])


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
async def store(db: Path) -> AsyncIterator[SQLiteStore]:
    s = SQLiteStore(db)
    yield s
    await s.close()


# ---------------------------------------------------------------------- file & schema


async def test_wal_mode_pragmas_and_schema_version(store: SQLiteStore, db: Path) -> None:
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    writer = store._writer
    assert writer.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    assert writer.execute("PRAGMA foreign_keys").fetchone()[0] == 1


async def test_reopen_is_idempotent_and_newer_schema_is_refused(db: Path) -> None:
    for _ in range(3):
        s = SQLiteStore(db)
        await s.create_bank("b")
        await s.close()
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer"):
        SQLiteStore(db)


async def test_data_survives_reopen(db: Path) -> None:
    s = SQLiteStore(db)
    await s.create_bank("b")
    records = [
        rec(
            "b",
            f"m{i}",
            f"kingfisher dives {i}",
            tags=("bird",),
            occurred_at=T0 + timedelta(i),
            metadata={"i": i, "flag": i % 2 == 0},
        )
        for i in range(20)
    ]
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(20, 16)).astype(np.float32)
    await s.write_memories(
        records,
        [
            vec("b", r.id, vectors[i], tags=r.tags, metadata=r.metadata)
            for i, r in enumerate(records)
        ],
        [Entity("e1", "b", "Kingfisher", "kingfisher"), Entity("e2", "b", "River", "river")],
        [EntityLink("b", "m0", "e1"), EntityLink("b", "m1", "e2")],
    )
    await s.relate([Relation("b", "e1", "e2")])
    query = rng.normal(size=16).astype(np.float32)
    before = await s.search("b", query, limit=5, where=RecordFilter(metadata={"flag": True}))
    await s.close()

    reopened = SQLiteStore(db)
    try:
        assert await reopened.count("b") == 20
        assert await reopened.get("b", ["m3"]) == [records[3]]
        assert len(await reopened.keyword_search("b", "kingfisher", limit=50)) == 20
        after = await reopened.search(
            "b", query, limit=5, where=RecordFilter(metadata={"flag": True})
        )
        assert [h.id for h in after] == [h.id for h in before]
        assert [h.score for h in after] == pytest.approx([h.score for h in before], abs=1e-6)
        hits = await reopened.neighbourhood("b", ["e1"], depth=1)
        assert [(h.memory_id, h.distance) for h in hits] == [("m0", 0), ("m1", 1)]
        assert [b.bank_id for b in await reopened.list_banks()] == ["b"]
    finally:
        await reopened.close()


async def test_in_memory_database_works(tmp_path: Path) -> None:
    s = SQLiteStore(":memory:")
    try:
        await s.create_bank("b")
        await s.write_memories([rec("b", "m")], [vec("b", "m", [1, 0])], [], [])
        assert await s.count("b") == 1
        assert [h.id for h in await s.search("b", np.array([1, 0], np.float32), limit=1)] == ["m"]
    finally:
        await s.close()
    assert not await asyncio.to_thread(lambda: list(tmp_path.iterdir()))


async def test_closed_store_refuses_calls(db: Path) -> None:
    s = SQLiteStore(db)
    await s.close()
    await s.close()
    assert not (await s.health()).ok
    with pytest.raises(StoreError):
        await s.count("b")
    with pytest.raises(StoreError):
        await s.put([rec("b", "m")])


# ---------------------------------------------------------------------- keyword index


async def test_keyword_tokenizer_folds_diacritics_and_stems(store: SQLiteStore) -> None:
    await store.create_bank("b")
    await store.put(
        [
            rec("b", "cafe", "Meet at the Café Müller"),
            rec("b", "run", "She was running through the fields"),
            rec("b", "other", "nothing relevant"),
        ]
    )
    assert [h.id for h in await store.keyword_search("b", "cafe muller", limit=5)] == ["cafe"]
    assert [h.id for h in await store.keyword_search("b", "CAFÉ", limit=5)] == ["cafe"]
    assert [h.id for h in await store.keyword_search("b", "runs", limit=5)] == ["run"]
    assert await store.keyword_search("b", "the and of with", limit=5) == []
    hits = await store.keyword_search("b", "running", limit=5)
    assert hits[0].score > 0


async def test_replace_keeps_fts_index_consistent(store: SQLiteStore, db: Path) -> None:
    await store.create_bank("b")
    await store.put([rec("b", "m", "osprey")])
    await store.put([rec("b", "m", "albatross")])
    await store.delete("b", ["m"])
    await store.put([rec("b", "m2", "osprey albatross")])
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO memories_fts (memories_fts) VALUES ('integrity-check')")
    assert fts_hits(db, "osprey") == 1
    assert fts_hits(db, "albatross") == 1


async def test_keyword_index_tracks_random_puts_replaces_and_deletes(
    store: SQLiteStore, db: Path
) -> None:
    rng = np.random.default_rng(21)
    vocabulary = ["lynx", "otter", "badger", "marten", "stoat", "weasel", "mink", "ferret"]
    live: dict[str, set[str]] = {}
    await store.create_bank("b")
    await store.create_bank("other")
    await store.put([rec("other", f"m{i}", " ".join(vocabulary)) for i in range(5)])
    for _ in range(60):
        ids = [f"m{i}" for i in rng.choice(25, size=int(rng.integers(1, 6)), replace=False)]
        if rng.random() < 0.7:
            batch = []
            for memory_id in ids:
                words = set(rng.choice(vocabulary, size=int(rng.integers(1, 4)), replace=False))
                live[memory_id] = {str(w) for w in words}
                batch.append(rec("b", memory_id, " ".join(sorted(live[memory_id]))))
            await store.put(batch)
        else:
            expected = sum(1 for i in ids if live.pop(i, None) is not None)
            assert await store.delete("b", ids) == expected
    for word in vocabulary:
        hits = await store.keyword_search("b", word, limit=100)
        assert {h.id for h in hits} == {i for i, words in live.items() if word in words}
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO memories_fts (memories_fts) VALUES ('integrity-check')")
    assert await store.count("other") == 5


async def test_words_in_half_of_all_documents_do_not_cost_a_full_scan(store: SQLiteStore) -> None:
    await store.create_bank("b")
    n = 12_000
    await store.put(
        [
            rec("b", f"m{i}", f"common filler {i}" + (" rare" if i % 1000 == 0 else ""))
            for i in range(n)
        ]
    )
    hits = await store.keyword_search("b", "common rare", limit=50)
    # "common" is in every document of the bank, so it is dropped while "rare" is
    # there: only the documents with "rare" are scored, not all 12k.
    assert {h.id for h in hits} == {f"m{i}" for i in range(0, n, 1000)}
    assert len(await store.keyword_search("b", "common", limit=50)) == 50
    assert await store.keyword_search("b", "common nowhere", limit=50) == []


# ---------------------------------------------------------------------- atomicity on disk


async def _seed(store: SQLiteStore) -> dict[str, int]:
    await store.create_bank("b")
    await store.write_memories(
        [rec("b", "old", "heron", tags=("keep",))],
        [vec("b", "old", [1, 0, 0, 0])],
        [Entity("old-e", "b", "Old", "old")],
        [EntityLink("b", "old", "old-e")],
    )
    return table_counts(Path(store.path))


def _batch(n: int) -> tuple[list[MemoryRecord], list[VectorItem], list[Entity], list[EntityLink]]:
    records = [rec("b", f"n{i}", f"cormorant {i}", tags=("new",)) for i in range(n)]
    vectors = [vec("b", r.id, [1, i + 1, 0, 0]) for i, r in enumerate(records)]
    entities = [Entity("new-e", "b", "New", "new")]
    links = [EntityLink("b", r.id, "new-e") for r in records]
    return records, vectors, entities, links


async def test_failed_write_memories_leaves_no_row_in_any_table(
    store: SQLiteStore, db: Path
) -> None:
    baseline = await _seed(store)

    records, vectors, entities, links = _batch(50)
    vectors[-1] = vec("b", "n49", [1, 2, 3])  # wrong dimension, last in the batch
    with pytest.raises(ValidationError) as info:
        await store.write_memories(records, vectors, entities, links)
    assert info.value.field == "vector"
    assert table_counts(db) == baseline
    assert fts_hits(db, "cormorant") == 0

    records, vectors, entities, links = _batch(50)
    records.append(rec("missing-bank", "x"))
    with pytest.raises(BankNotFound):
        await store.write_memories(records, vectors, entities, links)
    assert table_counts(db) == baseline

    records, vectors, entities, links = _batch(50)
    links.append(EntityLink("b", "n0", "no-such-entity"))
    with pytest.raises(ValidationError):
        await store.write_memories(records, vectors, entities, links)
    assert table_counts(db) == baseline
    assert fts_hits(db, "cormorant") == 0

    # The store is still fully usable, and its vector cache was not polluted.
    hits = await store.search("b", np.array([1, 1, 0, 0], np.float32), limit=10)
    assert [h.id for h in hits] == ["old"]
    await store.write_memories(*_batch(50))
    assert await store.count("b") == 51


_WRITER_SCRIPT = textwrap.dedent(
    """
    import asyncio, sys, time
    from datetime import datetime, timezone
    import numpy as np
    from astrocyte.spi import Entity, EntityLink, MemoryRecord, VectorItem
    from astrocyte.stores.sqlite import SQLiteStore, _store

    path, n, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if mode == "hook":
        original = _store.SQLiteStore._write_vector_rows

        def hooked(self, conn, items, units):
            after = original(self, conn, items, units)
            print("MID", flush=True)  # every row is written, nothing committed yet
            time.sleep(120)
            return after

        _store.SQLiteStore._write_vector_rows = hooked

    async def main():
        store = SQLiteStore(path)
        await store.create_bank("b")
        now = datetime.now(timezone.utc)
        rng = np.random.default_rng(0)
        matrix = rng.normal(size=(n, 384)).astype(np.float32)
        records = [
            MemoryRecord(f"m{i}", "b", f"crash test text number {i}", "src", i, "text", now,
                         now, ("t",), {"i": i})
            for i in range(n)
        ]
        vectors = [VectorItem(r.id, "b", matrix[i], ("t",)) for i, r in enumerate(records)]
        entities = [Entity("e", "b", "E", "e")]
        links = [EntityLink("b", r.id, "e") for r in records]
        print("START", flush=True)
        await store.write_memories(records, vectors, entities, links)
        print("DONE", flush=True)
        time.sleep(120)

    asyncio.run(main())
    """
)


def _run_and_kill(db: Path, n: int, mode: str, delay: float) -> str:
    """Start a writer process, SIGKILL it at the marked moment; returns the last line."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER_SCRIPT, str(db), str(n), mode],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    marker = "MID" if mode == "hook" else "START"
    last = ""
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline().strip()
            if not line and proc.poll() is not None:
                break
            last = line or last
            if line == marker:
                time.sleep(delay)
                break
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert last == marker, f"writer never reached {marker!r}"
    return last


async def _assert_all_or_nothing(db: Path, n: int) -> int:
    reopened = SQLiteStore(db)  # runs WAL recovery
    try:
        count = await reopened.count("b")
        assert count in (0, n)
        hits = await reopened.search("b", np.ones(384, np.float32), limit=n + 10)
        assert len(hits) == count
        assert len(await reopened.neighbourhood("b", ["e"], depth=0, limit=n + 10)) == count
        assert len(await reopened.find_entities("b", ["e"])) == (1 if count else 0)
    finally:
        await reopened.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        conn.execute("INSERT INTO memories_fts (memories_fts) VALUES ('integrity-check')")
        counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ALL_TABLES}
    assert counts["memories"] == counts["vectors"] == counts["entity_links"] == count
    assert counts["memory_tags"] == count
    return count


@pytest.mark.slow
async def test_crash_mid_transaction_leaves_nothing(tmp_path: Path) -> None:
    # 30k x 384 float32 is ~46 MB, more than the page cache, so uncommitted pages are
    # already spilled into the WAL when the process dies.
    db = tmp_path / "crash.db"
    await asyncio.to_thread(_run_and_kill, db, 30_000, "hook", 0.0)
    assert await _assert_all_or_nothing(db, 30_000) == 0


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.3, 0.9])
async def test_crash_at_random_moment_is_all_or_nothing(tmp_path: Path, delay: float) -> None:
    db = tmp_path / "crash.db"
    await asyncio.to_thread(_run_and_kill, db, 15_000, "timed", delay)
    await _assert_all_or_nothing(db, 15_000)


# ---------------------------------------------------------------------- concurrency


async def test_concurrent_writers_and_readers_lose_nothing(store: SQLiteStore) -> None:
    await store.create_bank("b")
    rng = np.random.default_rng(3)
    tasks, per_task = 40, 25

    async def writer(t: int) -> None:
        ids = [f"t{t}-m{i}" for i in range(per_task)]
        await store.write_memories(
            [rec("b", i, f"puffin colony {i}", tags=(f"task{t}",)) for i in ids],
            [vec("b", i, rng.normal(size=8), tags=(f"task{t}",)) for i in ids],
            [Entity(f"e{t}", "b", f"E{t}", f"e{t}")],
            [EntityLink("b", i, f"e{t}") for i in ids],
        )

    async def reader() -> None:
        for _ in range(10):
            await store.search("b", rng.normal(size=8).astype(np.float32), limit=5)
            await store.keyword_search("b", "puffin", limit=5)
            await asyncio.sleep(0)

    await asyncio.gather(*[writer(t) for t in range(tasks)], *[reader() for _ in range(8)])
    total = tasks * per_task
    assert await store.count("b") == total
    hits = await store.search("b", rng.normal(size=8).astype(np.float32), limit=total)
    assert len({h.id for h in hits}) == total
    tagged = await store.search(
        "b", rng.normal(size=8).astype(np.float32), limit=total, where=RecordFilter(tags=("task7",))
    )
    assert {h.id for h in tagged} == {f"t7-m{i}" for i in range(per_task)}
    assert len(await store.keyword_search("b", "puffin", limit=total)) == total


async def test_big_write_does_not_block_the_event_loop(store: SQLiteStore) -> None:
    await store.create_bank("b")
    n = 20_000
    rng = np.random.default_rng(4)
    matrix = rng.normal(size=(n, 64)).astype(np.float32)
    records = [rec("b", f"m{i}", f"gannet {i}") for i in range(n)]
    vectors = [vec("b", f"m{i}", matrix[i]) for i in range(n)]
    gaps: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    tick = asyncio.create_task(ticker())
    await store.write_memories(records, vectors, [], [])
    done.set()
    await tick
    assert len(gaps) > 3
    assert max(gaps) < 0.25, f"event loop stalled for {max(gaps):.3f}s"


# ---------------------------------------------------------------------- vector cache


class _Reference:
    """Brute-force model of one bank's vectors."""

    def __init__(self) -> None:
        self.items: dict[str, VectorItem] = {}

    def expected(
        self, query: npt.NDArray[np.float32], where: RecordFilter | None
    ) -> dict[str, float]:
        q = query / np.linalg.norm(query)
        out: dict[str, float] = {}
        for item in self.items.values():
            if where is not None and not where.matches(item):
                continue
            v = item.vector / np.linalg.norm(item.vector)
            out[item.id] = float(v @ q)
        return out


def _check(hits: list[tuple[str, float]], expected: dict[str, float], limit: int) -> None:
    best = sorted(expected.values(), reverse=True)[:limit]
    assert len(hits) == len(best)
    for memory_id, score in hits:
        assert score == pytest.approx(expected[memory_id], abs=1e-4)
    np.testing.assert_allclose([s for _, s in hits], best, atol=1e-4)


async def test_vector_cache_tracks_random_upserts_and_deletes(db: Path) -> None:
    rng = np.random.default_rng(11)
    dim, pool = 12, [f"v{i}" for i in range(60)]
    tags = ("a", "b", "c")
    ref = _Reference()
    store = SQLiteStore(db)
    try:
        for step in range(120):
            op = rng.integers(0, 3)
            if op < 2:
                chosen = rng.choice(pool, size=int(rng.integers(1, 8)), replace=False)
                batch = [
                    vec(
                        "b",
                        str(i),
                        rng.normal(size=dim),
                        tags=tuple(t for t in tags if rng.random() < 0.5),
                        occurred_at=None
                        if rng.random() < 0.2
                        else T0 + timedelta(hours=int(rng.integers(0, 10))),
                        metadata={"k": int(rng.integers(0, 3))},
                    )
                    for i in chosen
                ]
                await store.upsert(batch)
                ref.items.update({it.id: it for it in batch})
            else:
                chosen = rng.choice(pool, size=int(rng.integers(1, 6)), replace=False)
                removed = await store.delete("b", [str(i) for i in chosen])
                assert removed == sum(1 for i in chosen if ref.items.pop(str(i), None) is not None)
            if step % 40 == 39:
                await store.close()
                store = SQLiteStore(db)  # cold cache: reload from the file
            query = rng.normal(size=dim).astype(np.float32)
            for where in (
                None,
                RecordFilter(tags=(tags[step % 3],)),
                RecordFilter(metadata={"k": step % 3}),
                RecordFilter(time_from=T0 + timedelta(hours=3), time_to=T0 + timedelta(hours=7)),
                RecordFilter(tags=("a", "b"), metadata={"k": 1}),
            ):
                if not ref.items:
                    assert await store.search("b", query, limit=10, where=where) == []
                    continue
                hits = await store.search("b", query, limit=10, where=where)
                _check([(h.id, h.score) for h in hits], ref.expected(query, where), 10)
    finally:
        await store.close()


async def test_cache_sees_writes_from_another_process_or_instance(db: Path) -> None:
    a, b = SQLiteStore(db), SQLiteStore(db)
    try:
        await a.upsert([vec("bank", "x", [1, 0, 0])])
        assert [h.id for h in await a.search("bank", np.array([1, 0, 0], np.float32), limit=5)] == [
            "x"
        ]
        await b.upsert([vec("bank", "y", [0, 1, 0])])
        hits = await a.search("bank", np.array([0, 1, 0], np.float32), limit=5)
        assert [h.id for h in hits] == ["y", "x"]
        await b.delete("bank", ["y"])
        assert [h.id for h in await a.search("bank", np.array([0, 1, 0], np.float32), limit=5)] == [
            "x"
        ]
        # Emptied bank forgets its dimension: another model's vectors are welcome.
        await b.delete("bank", ["x"])
        await a.upsert([vec("bank", "z", [1, 0, 0, 0, 0])])
        assert [
            h.id for h in await b.search("bank", np.array([1, 0, 0, 0, 0], np.float32), limit=5)
        ] == ["z"]
    finally:
        await a.close()
        await b.close()


async def test_small_cache_budget_evicts_but_stays_correct(db: Path) -> None:
    store = SQLiteStore(db, vector_cache_bytes=10_000)
    rng = np.random.default_rng(5)
    try:
        banks = [f"bank{i}" for i in range(4)]
        data = {bank: rng.normal(size=(30, 16)).astype(np.float32) for bank in banks}
        for bank in banks:
            await store.upsert([vec(bank, f"{bank}-{i}", data[bank][i]) for i in range(30)])
        for _ in range(3):
            for bank in banks:
                query = rng.normal(size=16).astype(np.float32)
                hits = await store.search(bank, query, limit=3)
                m = data[bank] / np.linalg.norm(data[bank], axis=1, keepdims=True)
                best = np.argsort(-(m @ (query / np.linalg.norm(query))))[:3]
                assert [h.id for h in hits] == [f"{bank}-{i}" for i in best]
        assert len(store._caches) < len(banks)
    finally:
        await store.close()


async def test_delete_removes_records_and_vectors_together(store: SQLiteStore) -> None:
    await store.create_bank("b")
    await store.write_memories(
        [rec("b", "both"), rec("b", "doc-only")],
        [vec("b", "both", [1, 0]), vec("b", "vec-only", [0, 1])],
        [],
        [],
    )
    assert await store.delete("b", ["both", "doc-only", "vec-only", "none"]) == 3
    assert await store.count("b") == 0
    assert await store.search("b", np.array([1, 1], np.float32), limit=5) == []


async def test_zero_vector_and_bad_shapes_are_rejected(store: SQLiteStore) -> None:
    with pytest.raises(ValidationError):
        await store.upsert([vec("b", "z", [0, 0, 0])])
    with pytest.raises(ValidationError):
        await store.upsert([VectorItem("m", "b", np.ones((2, 2), np.float32))])
    with pytest.raises(ValidationError):
        await store.search("b", np.zeros(3, np.float32), limit=3)
