"""Helpers shared by the conformance suites: ids, record builders, the reference filter
semantics and hypothesis strategies.

Deliberately independent of :mod:`astrocyte.stores`: the suites must judge the built-in
stores, not reuse their code.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from astrocyte.spi import MemoryRecord, MetadataValue, RecordFilter, VectorItem

#: Settings of every property test: few enough examples to keep a run short against a
#: real server, no deadline (stores have I/O latency). The fixture-scoped store is fine
#: because every example works in a bank of its own, and the same inherited test
#: running on several suite subclasses (executors) is the whole point of a suite.
SUITE_SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.differing_executors,
    ],
)

BASE_TIME = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)

#: A few instants, so generated records and filters share boundary values.
TIMES: tuple[datetime, ...] = tuple(BASE_TIME + timedelta(hours=h) for h in range(6))

TAG_POOL = ("red", "green", "blue")

#: Values chosen to collide under sloppy equality: True/1/1.0, False/0, "1"/1, None.
METADATA_POOL: tuple[MetadataValue, ...] = (True, False, 0, 1, 1.0, 2, 2.5, "1", "a", "", None)

METADATA_KEYS = ("k1", "k2")

SAFE_TEXT = st.text(
    alphabet=st.characters(codec="utf-8", exclude_characters="\x00"),
    max_size=60,
)
"""Arbitrary text except NUL (which PostgreSQL cannot store)."""


def new_bank(prefix: str = "bank") -> str:
    """A bank id no other test uses, so suites also work on a shared, non-empty store."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def unique_word() -> str:
    """A made-up word no other test uses.

    Keyword tests that check *ranking* use these, so term statistics shared across
    banks (as in SQLite FTS5 or an Elasticsearch shard) cannot skew them.
    """
    consonants = "bcdfghjklmnpqrstvwxz"
    digits = uuid.uuid4().int
    letters = []
    for _ in range(10):
        digits, i = divmod(digits, len(consonants))
        letters.append(consonants[i])
    return "zq" + "".join(letters) + "o"


def record(
    bank_id: str,
    memory_id: str,
    text: str = "",
    *,
    occurred_at: datetime | None = None,
    tags: Sequence[str] = (),
    metadata: Mapping[str, MetadataValue] | None = None,
    created_at: datetime = BASE_TIME,
    source_id: str = "source",
    chunk_index: int = 0,
) -> MemoryRecord:
    """A memory record with sensible defaults."""
    return MemoryRecord(
        id=memory_id,
        bank_id=bank_id,
        text=text or f"memory {memory_id}",
        source_id=source_id,
        chunk_index=chunk_index,
        content_type="text",
        created_at=created_at,
        occurred_at=occurred_at,
        tags=tuple(tags),
        metadata=dict(metadata or {}),
        content_hash=f"hash-{memory_id}",
    )


def typed_metadata(metadata: Mapping[str, MetadataValue]) -> dict[str, tuple[type, MetadataValue]]:
    """Metadata with each value's type, so ``True`` and ``1`` compare unequal."""
    return {k: (type(v), v) for k, v in metadata.items()}


def reference_matches(where: RecordFilter, item: MemoryRecord | VectorItem) -> bool:
    """The filter semantics every store must implement: :meth:`RecordFilter.matches`."""
    return where.matches(item)


@dataclass(frozen=True)
class Payload:
    """Filterable attributes of a generated memory."""

    tags: tuple[str, ...]
    occurred_at: datetime | None
    metadata: dict[str, MetadataValue]


payloads = st.builds(
    Payload,
    tags=st.lists(st.sampled_from(TAG_POOL), unique=True, max_size=3).map(tuple),
    occurred_at=st.none() | st.sampled_from(TIMES),
    metadata=st.dictionaries(st.sampled_from(METADATA_KEYS), st.sampled_from(METADATA_POOL)),
)
"""Payloads drawn from small pools so filters often hit exactly."""


def filters(ids: Sequence[str]) -> st.SearchStrategy[RecordFilter]:
    """Random filters over :data:`payloads` and the given ids."""
    return st.builds(
        RecordFilter,
        tags=st.lists(st.sampled_from(TAG_POOL), unique=True, max_size=2).map(tuple),
        time_from=st.none() | st.sampled_from(TIMES),
        time_to=st.none() | st.sampled_from(TIMES),
        metadata=st.dictionaries(
            st.sampled_from(METADATA_KEYS), st.sampled_from(METADATA_POOL), max_size=2
        ),
        ids=st.none() | st.lists(st.sampled_from([*ids, "no-such-id"]), max_size=4).map(frozenset),
    )


aware_datetimes = st.datetimes(
    min_value=datetime(1900, 1, 1),
    max_value=datetime(2200, 1, 1),
    timezones=st.builds(
        timezone,
        st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timedelta(minutes=m)),
    ),
)
"""Aware datetimes with microseconds in assorted fixed UTC offsets."""

metadata_values: st.SearchStrategy[MetadataValue] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    SAFE_TEXT,
)
"""Any JSON scalar a store must round-trip exactly."""
