"""The embedded default store: documents, vectors and graph in one SQLite file."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from astrocyte.spi import SPI_VERSION, Entity, EntityLink, MemoryRecord, VectorItem
from astrocyte.stores.memory import check_entities, check_links, check_records, check_vector_items
from astrocyte.stores.sqlite._base import AfterCommit
from astrocyte.stores.sqlite._documents import DocumentOps, unindex_text
from astrocyte.stores.sqlite._graph import GraphOps
from astrocyte.stores.sqlite._sql import id_list
from astrocyte.stores.sqlite._vector_ops import VectorOps


class SQLiteStore(DocumentOps, VectorOps, GraphOps):
    """Embedded store: DocumentStore, VectorStore, GraphStore and AtomicMemoryWriter
    over one SQLite file.

    * **Durability and atomicity.** WAL journal, ``synchronous=NORMAL`` (a committed
      write survives a process crash; a power cut may lose the last transactions but
      never corrupts the file), foreign keys on. Every write call is one ``BEGIN
      IMMEDIATE`` transaction; :meth:`write_memories` writes records, vectors,
      entities and links in a single one.
    * **Threads.** Blocking SQLite calls never run on the event loop: writes go to one
      writer thread owning the write connection, reads to a small pool of threads with
      one read connection each (WAL lets them run concurrently with the writer).
    * **Keyword search.** FTS5 (``porter unicode61 remove_diacritics 2``) over memory
      text, ranked by ``bm25()``. Each non-stopword word of the query becomes a quoted
      phrase and the phrases are OR-ed (see
      :func:`~astrocyte.stores.sqlite._sql.fts_phrases`), so query syntax is never
      interpreted. BM25 term statistics are those of the whole file, not of one bank;
      results are still strictly scoped to the bank. Words found in half or more of
      all memories are left out of big queries (BM25 gives them no weight anyway).
    * **Vector search.** Exact cosine search with numpy over a per-bank cached matrix
      (:class:`~astrocyte.stores.sqlite._vectors.BankVectors`), loaded on first search,
      maintained incrementally by this store's writes and reloaded when another
      process changed the bank. A bank's dimension is fixed by its first vector.
    * **Deletes.** One object implements both ``DocumentStore.delete`` and
      ``VectorStore.delete``, so :meth:`delete` removes the memory rows (with their
      tags and keyword index entries) *and* the vectors of those ids, and returns how
      many ids existed in either. Graph links are removed by :meth:`delete_memories`.

    ``path`` may be ``":memory:"`` for a private in-memory database (no WAL; every
    call then runs on the single writer thread).
    """

    SPI_VERSION = SPI_VERSION

    async def delete(self, bank_id: str, ids: Sequence[str]) -> int:
        """Delete the memories *and* vectors of ``ids`` in one transaction; returns
        how many of the ids existed (as a memory, a vector or both)."""
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return 0

        def op(conn: sqlite3.Connection) -> tuple[int, AfterCommit]:
            existing = [
                str(r[0])
                for r in conn.execute(
                    "SELECT id FROM memories"
                    " WHERE bank_id = ? AND id IN (SELECT value FROM json_each(?))",
                    (bank_id, id_list(wanted)),
                )
            ]
            if existing:
                unindex_text(conn, bank_id, id_list(existing))
                conn.execute(
                    "DELETE FROM memories"
                    " WHERE bank_id = ? AND id IN (SELECT value FROM json_each(?))",
                    (bank_id, id_list(existing)),
                )
            vectors, after = self._delete_vector_rows(conn, bank_id, wanted)
            return len(set(existing).union(vectors)), after

        return await self._write(op)

    # ------------------------------------------------------------------ atomic writer

    async def write_memories(
        self,
        records: Sequence[MemoryRecord],
        vectors: Sequence[VectorItem],
        entities: Sequence[Entity],
        links: Sequence[EntityLink],
    ) -> None:
        """Write records, vectors, entities and links in one transaction: if anything
        is invalid (unknown bank, wrong vector dimension, link to an unknown entity)
        nothing of the call is visible."""
        if not (records or vectors or entities or links):
            return

        def op(conn: sqlite3.Connection) -> tuple[None, AfterCommit]:
            # Validation runs here, on the writer thread: for a big batch it is real CPU
            # work that must not stall the event loop.
            check_records(records)
            units = check_vector_items(vectors)
            check_entities(entities)
            check_links(links)
            if records:
                self._put_rows(conn, records)
            after = self._write_vector_rows(conn, vectors, units) if vectors else None
            if entities:
                self._upsert_entity_rows(conn, entities)
            if links:
                self._link_rows(conn, links)
            return None, after

        await self._write(op)
