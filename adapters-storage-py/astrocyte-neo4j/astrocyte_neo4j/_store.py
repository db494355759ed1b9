"""The Neo4j :class:`~astrocyte.spi.GraphStore`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, Final, TypeVar

from astrocyte.errors import AstrocyteError, ConfigError, StoreError, ValidationError
from astrocyte.spi import SPI_VERSION, Entity, EntityLink, GraphHit, HealthStatus, Relation
from astrocyte.stores.memory import check_entities, check_limit, check_links, check_relations
from neo4j import READ_ACCESS, WRITE_ACCESS, AsyncDriver, AsyncGraphDatabase, AsyncTransaction
from neo4j.exceptions import ClientError, DriverError, Neo4jError

from astrocyte_neo4j import _cypher
from astrocyte_neo4j._errors import PROVIDER, is_connection_error, is_transient, translate
from astrocyte_neo4j._options import Neo4jOptions, redact_uri
from astrocyte_neo4j._schema import (
    COMPONENT,
    SCHEMA_STATEMENTS,
    SCHEMA_VERSION,
    key_prefix,
    node_key,
)
from astrocyte_neo4j._traversal import expand

__all__ = ["Neo4jGraphStore"]

T = TypeVar("T")
Tx = AsyncTransaction

#: Rows per UNWIND statement; a call's chunks still share one transaction.
CHUNK: Final = 2000

#: Transient server conflicts (deadlocks between concurrent MERGEs) are retried with
#: this first delay, doubling, for as long as the operation's timeout allows.
_FIRST_BACKOFF_S: Final = 0.05

#: The argument each operation's input arrives in, for error messages.
_ARGUMENT: Final = {
    "upsert_entities": "entities",
    "link": "links",
    "relate": "relations",
    "find_entities": "normalized_names",
    "neighbourhood": "entity_ids",
    "delete_memories": "memory_ids",
}

#: Schema statements that lose a race with another client creating the same rule.
_SCHEMA_RACE_CODES: Final = frozenset(
    {
        "Neo.ClientError.Schema.EquivalentSchemaRuleAlreadyExists",
        "Neo.ClientError.Schema.ConstraintAlreadyExists",
        "Neo.ClientError.Schema.IndexAlreadyExists",
    }
)


def _chunks(rows: Sequence[T]) -> Iterable[Sequence[T]]:
    for start in range(0, len(rows), CHUNK):
        yield rows[start : start + CHUNK]


async def _fetch(tx: Tx, query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    result = await tx.run(query, params)
    return [record.data() async for record in result]


async def _execute(tx: Tx, query: str, params: dict[str, Any]) -> None:
    result = await tx.run(query, params)
    await result.consume()


class Neo4jGraphStore:
    """:class:`~astrocyte.spi.GraphStore` on a Neo4j 5 server (Community or Enterprise).

    Construction does no I/O: the driver is created, and constraints and indexes are
    ensured, on the first call. Every call runs in one explicit transaction, so a
    write is all-or-nothing; a call that cannot reach the server, or exceeds
    ``timeout_s``, raises :class:`~astrocyte.errors.ProviderUnavailable` and applied
    nothing. Use one instance from one event loop.

    Args:
        uri: ``bolt://host:7687`` (or ``neo4j://``, ``+s``/``+ssc`` for TLS). Required.
        user: user name (default ``"neo4j"``).
        password: password; ``None`` (default) connects without authentication.
        database: database name (default ``"neo4j"``).
        timeout_s: limit of each operation, connecting included (default 30).
        connect_timeout_s: limit of opening one connection (default 10).
        max_pool_size: most connections kept open (default 50).
    """

    SPI_VERSION: Final = SPI_VERSION

    def __init__(
        self,
        uri: str,
        *,
        user: str = "neo4j",
        password: str | None = None,
        database: str = "neo4j",
        timeout_s: float | str = 30.0,
        connect_timeout_s: float | str = 10.0,
        max_pool_size: int | str = 50,
    ) -> None:
        """Validate the options; raises :class:`~astrocyte.errors.ConfigError`."""
        self._options = Neo4jOptions.parse(
            uri=uri,
            user=user,
            password=password,
            database=database,
            timeout_s=timeout_s,
            connect_timeout_s=connect_timeout_s,
            max_pool_size=max_pool_size,
        )
        self._driver: AsyncDriver | None = None
        self._ready = False
        self._closed = False
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        o = self._options
        return f"Neo4jGraphStore(uri={redact_uri(o.uri)!r}, database={o.database!r})"

    @property
    def options(self) -> Neo4jOptions:
        """The validated options (the password included: never log this object)."""
        return self._options

    # ------------------------------------------------------------------ plumbing

    def _new_driver(self) -> AsyncDriver:
        o = self._options
        return AsyncGraphDatabase.driver(
            o.uri,
            auth=(o.user, o.password) if o.password is not None else None,
            connection_timeout=o.connect_timeout_s,
            connection_acquisition_timeout=o.timeout_s,
            max_connection_pool_size=o.max_pool_size,
            user_agent="astrocyte-neo4j/0.1.0",
            # The server's query hints ("label does not exist" on a new database)
            # would otherwise be logged as warnings on every first query.
            notifications_min_severity="OFF",
        )

    async def _connect(self) -> AsyncDriver:
        """The driver, with the schema ensured; created once, retried until it works."""
        if self._ready and self._driver is not None:
            return self._driver
        async with self._lock:
            if self._closed:
                raise StoreError(f"{PROVIDER}: the store is closed")
            if self._driver is None:
                self._driver = self._new_driver()
            if not self._ready:
                await self._ensure_schema(self._driver)
                self._ready = True
            return self._driver

    async def _ensure_schema(self, driver: AsyncDriver) -> None:
        version = await self._attempts(driver, _read_schema_version, write=False)
        if isinstance(version, int) and version > SCHEMA_VERSION:
            raise ConfigError(
                "database",
                f"database {self._options.database!r} holds astrocyte-neo4j schema version"
                f" {version}; this adapter knows only up to {SCHEMA_VERSION}",
                fix="upgrade astrocyte-neo4j or use another database",
            )
        if version == SCHEMA_VERSION:
            return
        # Schema commands may not share a transaction with data writes: one each.
        for statement in SCHEMA_STATEMENTS:
            try:
                await self._attempts(driver, _schema_work(statement), write=True)
            except ClientError as exc:
                # Another client created the same rule between our check and create.
                if exc.code not in _SCHEMA_RACE_CODES:
                    raise
        await self._attempts(driver, _await_indexes, write=False)
        await self._attempts(driver, _write_schema_version, write=True)

    async def _run(self, what: str, work: Callable[[Tx], Awaitable[T]], *, write: bool) -> T:
        """Run ``work`` in one transaction within ``timeout_s``, with driver and server
        errors translated."""
        if self._closed:
            raise StoreError(f"{PROVIDER}: the store is closed")
        o = self._options
        try:
            async with asyncio.timeout(o.timeout_s):
                driver = await self._connect()
                return await self._attempts(driver, work, write=write)
        except TimeoutError:
            raise translate(
                TimeoutError(f"no answer within timeout_s={o.timeout_s:g}"), o, what
            ) from None
        except AstrocyteError:
            raise
        except (Neo4jError, DriverError, OSError) as exc:
            raise translate(exc, o, what) from exc
        except UnicodeError:
            # Raised while packing parameters, before anything was committed.
            raise ValidationError(
                _ARGUMENT.get(what, what), "text must be valid UTF-8 (no lone surrogates)"
            ) from None

    async def _attempts(
        self, driver: AsyncDriver, work: Callable[[Tx], Awaitable[T]], *, write: bool
    ) -> T:
        """Run ``work``, retrying once after a connection failure (a pooled connection
        may have died while idle: the retry gets a fresh one, and a server that is
        really gone fails again at once) and transient conflicts until the caller's
        timeout. Every write is idempotent, so retrying an unknown commit is safe."""
        reconnected = False
        backoff = _FIRST_BACKOFF_S
        while True:
            try:
                return await self._transaction(driver, work, write=write)
            except (Neo4jError, DriverError, OSError) as exc:
                if is_connection_error(exc) and not reconnected:
                    reconnected = True
                    continue
                if is_transient(exc):
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 1.0)
                    continue
                raise

    async def _transaction(
        self, driver: AsyncDriver, work: Callable[[Tx], Awaitable[T]], *, write: bool
    ) -> T:
        o = self._options
        # The driver-wide bookmark manager chains every session causally, so a read
        # sees the writes before it even on a cluster's follower.
        async with driver.session(
            database=o.database,
            default_access_mode=WRITE_ACCESS if write else READ_ACCESS,
            bookmark_manager=driver.execute_query_bookmark_manager,
        ) as session:
            tx = await session.begin_transaction(timeout=o.timeout_s)
            try:
                result = await work(tx)
                await tx.commit()
                return result
            finally:
                if not tx.closed():
                    # Rolls back; a broken connection must not mask the real error.
                    with contextlib.suppress(Neo4jError, DriverError, OSError):
                        await tx.close()

    # ------------------------------------------------------------------ GraphStore

    async def upsert_entities(self, entities: Sequence[Entity]) -> None:
        """Insert or replace entities (keyed by bank and ``id``); a replaced entity
        keeps its links and relations."""
        check_entities(entities)
        if not entities:
            return
        rows = [
            {
                "key": node_key(e.bank_id, e.id),
                "bank_id": e.bank_id,
                "id": e.id,
                "name": e.name,
                "normalized": e.normalized,
                "kind": e.kind,
            }
            for e in entities
        ]

        async def work(tx: Tx) -> None:
            for chunk in _chunks(rows):
                await _execute(tx, _cypher.UPSERT_ENTITIES, {"rows": list(chunk)})

        await self._run("upsert_entities", work, write=True)

    async def link(self, links: Sequence[EntityLink]) -> None:
        """Record that memories mention entities (idempotent). The entities must exist
        in the link's bank (:class:`~astrocyte.errors.ValidationError` otherwise)."""
        check_links(links)
        unique = list(dict.fromkeys((ln.bank_id, ln.memory_id, ln.entity_id) for ln in links))
        if not unique:
            return
        required: dict[str, str] = {}
        for i, ln in enumerate(links):
            required.setdefault(node_key(ln.bank_id, ln.entity_id), f"links[{i}].entity_id")
        rows = [
            {
                "bank_id": bank_id,
                "memory_id": memory_id,
                "memory_key": node_key(bank_id, memory_id),
                "entity_key": node_key(bank_id, entity_id),
            }
            for bank_id, memory_id, entity_id in unique
        ]

        async def work(tx: Tx) -> None:
            await _require_entities(tx, required)
            for chunk in _chunks(rows):
                await _execute(tx, _cypher.UPSERT_LINKS, {"rows": list(chunk)})

        await self._run("link", work, write=True)

    async def relate(self, relations: Sequence[Relation]) -> None:
        """Add entity→entity edges (idempotent per source, target and kind); both
        entities must exist in the relation's bank."""
        check_relations(relations)
        unique = list(
            dict.fromkeys(
                (r.bank_id, r.source_entity_id, r.target_entity_id, r.kind) for r in relations
            )
        )
        if not unique:
            return
        required: dict[str, str] = {}
        for i, r in enumerate(relations):
            source_key = node_key(r.bank_id, r.source_entity_id)
            target_key = node_key(r.bank_id, r.target_entity_id)
            required.setdefault(source_key, f"relations[{i}].source_entity_id")
            required.setdefault(target_key, f"relations[{i}].target_entity_id")
        rows = [
            {
                "source_key": node_key(bank_id, source),
                "target_key": node_key(bank_id, target),
                "kind": kind,
            }
            for bank_id, source, target, kind in unique
        ]

        async def work(tx: Tx) -> None:
            await _require_entities(tx, required)
            for chunk in _chunks(rows):
                await _execute(tx, _cypher.RELATE, {"rows": list(chunk)})

        await self._run("relate", work, write=True)

    async def find_entities(self, bank_id: str, normalized_names: Sequence[str]) -> list[Entity]:
        """Entities whose ``normalized`` name is one of the given names, each with its
        ``mentions`` count, ordered by normalized name then id."""
        names = [n for n in dict.fromkeys(normalized_names) if isinstance(n, str)]
        if not names:
            return []

        async def work(tx: Tx) -> list[dict[str, Any]]:
            return await _fetch(tx, _cypher.FIND_ENTITIES, {"bank_id": bank_id, "names": names})

        rows = await self._run("find_entities", work, write=False)
        return [
            Entity(
                id=r["id"],
                bank_id=bank_id,
                name=r["name"],
                normalized=r["normalized"],
                kind=r["kind"],
                mentions=int(r["mentions"]),
            )
            for r in rows
        ]

    async def neighbourhood(
        self, bank_id: str, entity_ids: Sequence[str], *, depth: int = 1, limit: int = 100
    ) -> list[GraphHit]:
        """Memories linked to the entities or to entities up to ``depth`` relation hops
        away (either direction), closest and most-connected first, at most ``limit``.
        One read transaction, two queries per level."""
        check_limit(limit)
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
            raise ValidationError("depth", "must be a non-negative integer")
        for i, entity_id in enumerate(entity_ids):
            if not isinstance(entity_id, str):
                raise ValidationError(f"entity_ids[{i}]", "must be a string")
        if not entity_ids or limit == 0:
            return []
        base = {"bank_id": bank_id, "prefix": key_prefix(bank_id)}

        async def work(tx: Tx) -> list[GraphHit]:
            async def neighbours(ids: list[str]) -> list[tuple[str, str]]:
                rows = await _fetch(tx, _cypher.NEIGHBOURS, {**base, "ids": ids})
                return [(r["entity"], r["other"]) for r in rows]

            async def links(ids: list[str]) -> list[tuple[str, str]]:
                rows = await _fetch(tx, _cypher.LINKS_OF, {**base, "ids": ids})
                return [(r["entity"], r["memory"]) for r in rows]

            return await expand(
                entity_ids, depth=depth, limit=limit, neighbours=neighbours, links=links
            )

        return await self._run("neighbourhood", work, write=False)

    async def delete_memories(self, bank_id: str, memory_ids: Sequence[str]) -> int:
        """Remove the memories' links, then entities left with no link (their
        relations go with them). Returns the number of links removed."""
        keys = [node_key(bank_id, m) for m in dict.fromkeys(memory_ids) if isinstance(m, str)]
        if not keys:
            return 0

        async def work(tx: Tx) -> int:
            removed = 0
            for chunk in _chunks(keys):
                params = {"keys": list(chunk)}
                (row,) = await _fetch(tx, _cypher.TOUCHED_BY_MEMORIES, params)
                removed += int(row["links"])
                await _execute(tx, _cypher.DELETE_MEMORIES, params)
                # Orphans are checked after this chunk's memories are gone; an entity
                # also linked from a later chunk survives until that chunk runs.
                for touched in _chunks(row["touched"]):
                    await _execute(tx, _cypher.DELETE_ORPHANS, {"keys": list(touched)})
            return removed

        return await self._run("delete_memories", work, write=True)

    async def health(self) -> HealthStatus:
        """Runs ``RETURN 1`` on the configured database."""
        if self._closed:
            return HealthStatus(ok=False, detail="closed")
        try:
            await self._run("health", _ping, write=False)
        except AstrocyteError as exc:
            return HealthStatus(ok=False, detail=str(exc))
        o = self._options
        return HealthStatus(ok=True, detail=f"neo4j at {redact_uri(o.uri)}/{o.database}")

    async def close(self) -> None:
        """Close the driver and its connections (idempotent); the store is unusable
        afterwards."""
        async with self._lock:
            self._closed = True
            driver, self._driver = self._driver, None
        if driver is not None:
            with contextlib.suppress(Neo4jError, DriverError, OSError):
                await driver.close()


# ---------------------------------------------------------------------- work units


async def _require_entities(tx: Tx, required: Mapping[str, str]) -> None:
    """Raise :class:`ValidationError` (rolling the transaction back) naming the first
    input field whose entity does not exist. ``required`` maps each entity key to the
    first field naming it, in input order."""
    missing: set[str] = set()
    for chunk in _chunks(list(required)):
        (row,) = await _fetch(tx, _cypher.MISSING_ENTITIES, {"keys": list(chunk)})
        missing.update(row["missing"])
    for key, field_name in required.items():
        if key in missing:
            raise ValidationError(
                field_name,
                "unknown entity in its bank",
                fix="upsert_entities() before linking or relating them",
            )


async def _ping(tx: Tx) -> None:
    await _execute(tx, _cypher.PING, {})


async def _read_schema_version(tx: Tx) -> object:
    (row,) = await _fetch(tx, _cypher.READ_SCHEMA_VERSION, {"component": COMPONENT})
    return row["version"]


async def _write_schema_version(tx: Tx) -> None:
    params = {"component": COMPONENT, "version": SCHEMA_VERSION}
    await _execute(tx, _cypher.WRITE_SCHEMA_VERSION, params)


async def _await_indexes(tx: Tx) -> None:
    # Online indexes before the first data query, so it never falls back to a scan.
    await _execute(tx, "CALL db.awaitIndexes(300)", {})


def _schema_work(statement: str) -> Callable[[Tx], Awaitable[None]]:
    async def work(tx: Tx) -> None:
        await _execute(tx, statement, {})

    return work
