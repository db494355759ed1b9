"""Conformance suite for :class:`astrocyte.spi.DocumentStore` implementations."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from astrocyte.errors import BankNotFound, ValidationError
from astrocyte.spi import DocumentStore, MemoryRecord, RecordFilter, ScoredId
from astrocyte.testing._support import (
    SAFE_TEXT,
    SUITE_SETTINGS,
    TIMES,
    Payload,
    aware_datetimes,
    filters,
    metadata_values,
    new_bank,
    payloads,
    record,
    reference_matches,
    typed_metadata,
    unique_word,
)

#: Queries full of FTS/Lucene/tsquery syntax; each also contains the word "apple".
SYNTAX_QUERIES_WITH_APPLE = (
    'apple"',
    '"apple',
    '"apple" "',
    "apple*",
    "*apple",
    "-apple",
    "apple -",
    "apple AND",
    "AND apple",
    "apple OR",
    "NOT apple",
    "NEAR(apple",
    "NEAR(apple, pear)",
    "(apple",
    "apple)",
    "((apple))",
    "apple:",
    "text:apple",
    "title:apple",
    "apple^2",
    "{apple}",
    "[apple]",
    "apple~",
    "apple!",
    "apple & | !",
    "apple's",
    "apple;DROP TABLE memories;--",
    "apple\\",
    "apple\x01\x02",
    "apple 😀",
    "apple\u200b",
)

#: Queries with no matchable word at all (or nothing but syntax).
QUERIES_WITHOUT_WORDS = (
    "",
    "   ",
    '"',
    '""',
    "*",
    "-",
    "()",
    "(",
    ")",
    ":",
    "^",
    "!!!",
    "😀🎉",
    "\x01",
)

#: Queries that may or may not match but must never raise.
ODD_QUERIES = (
    "AND",
    "OR",
    "NOT",
    "NEAR",
    "the and of",
    "a",
    "ünïcödé wörds",
    "東京タワー",
    "Straße",
    "x" * 5000,
    " ".join(f"w{i}" for i in range(500)),
    "'; SELECT 1; --",
    "\\",
    "%_",
)


def _ids(hits: list[ScoredId]) -> list[str]:
    return [h.id for h in hits]


class DocumentStoreConformance:
    """Behaviour every :class:`~astrocyte.spi.DocumentStore` must show.

    Subclass it in a test module and override the ``document_store`` fixture::

        class TestMyDocumentStore(DocumentStoreConformance):
            @pytest.fixture
            async def document_store(self):
                store = MyStore(...)
                yield store
                await store.close()

    The fixture may yield a shared, non-empty store: every test works in fresh banks
    with random ids.
    """

    @pytest.fixture
    def document_store(self) -> DocumentStore:
        """Override in the subclass: yield the store under test."""
        pytest.fail(f"{type(self).__name__} must override the `document_store` fixture")

    # ------------------------------------------------------------------ banks

    async def test_create_bank_is_idempotent(self, document_store: DocumentStore) -> None:
        """create_bank twice yields one empty bank with a UTC creation time."""
        bank = new_bank()
        assert not await document_store.bank_exists(bank)
        await document_store.create_bank(bank)
        await document_store.create_bank(bank)
        assert await document_store.bank_exists(bank)
        infos = [b for b in await document_store.list_banks() if b.bank_id == bank]
        assert len(infos) == 1
        assert infos[0].memory_count == 0
        assert infos[0].created_at.utcoffset() == timedelta(0)
        assert abs(infos[0].created_at - datetime.now(UTC)) < timedelta(hours=1)

    async def test_list_banks_counts_and_order(self, document_store: DocumentStore) -> None:
        """list_banks is ordered by bank id and counts each bank's memories."""
        banks = [new_bank() for _ in range(3)]
        for bank in reversed(banks):
            await document_store.create_bank(bank)
        for n, bank in enumerate(banks):
            await document_store.put([record(bank, f"m{i}") for i in range(2 * n)])
        listed = await document_store.list_banks()
        all_ids = [b.bank_id for b in listed]
        assert all_ids == sorted(all_ids)
        mine = {b.bank_id: b.memory_count for b in listed if b.bank_id in banks}
        assert mine == {banks[0]: 0, banks[1]: 2, banks[2]: 4}

    # ------------------------------------------------------------------ put / get

    async def test_put_get_roundtrips_every_field(self, document_store: DocumentStore) -> None:
        """Every field comes back equal, metadata with its JSON types, datetimes in UTC."""
        bank = new_bank()
        await document_store.create_bank(bank)
        original = MemoryRecord(
            id="mem/1:ü",
            bank_id=bank,
            text="Line one\nLine two — ünïcödé, 東京, emoji 🎉, quotes \"'` and tabs\t.",
            source_id="src-42",
            chunk_index=7,
            content_type="conversation",
            created_at=datetime(
                2024, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=5, minutes=30))
            ),
            occurred_at=datetime(
                1999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-8))
            ),
            tags=("alpha", "ünï", "with space", "x:y"),
            metadata={
                "s": "text",
                "empty": "",
                "i": -42,
                "big": 2**53 + 1,
                "f": 3.25,
                "neg": -0.5,
                "t": True,
                "fb": False,
                "none": None,
                "one": 1,
                "zero": 0,
                "ünï.key": "ok",
            },
            content_hash="sha256:abc",
        )
        await document_store.put([original])
        [got] = await document_store.get(bank, [original.id])
        assert got == original
        assert isinstance(got.tags, tuple)
        assert typed_metadata(got.metadata) == typed_metadata(original.metadata)
        assert got.created_at.utcoffset() == timedelta(0)
        assert got.occurred_at is not None
        assert got.occurred_at.utcoffset() == timedelta(0)

    async def test_occurred_at_none_roundtrips(self, document_store: DocumentStore) -> None:
        """A record without occurred_at, tags or metadata comes back unchanged."""
        bank = new_bank()
        await document_store.create_bank(bank)
        original = record(bank, "m", occurred_at=None, tags=(), metadata={})
        await document_store.put([original])
        assert await document_store.get(bank, ["m"]) == [original]

    @SUITE_SETTINGS
    @given(
        text=SAFE_TEXT,
        created=aware_datetimes,
        occurred=st.none() | aware_datetimes,
        tags=st.lists(SAFE_TEXT, max_size=4, unique=True).map(tuple),
        metadata=st.dictionaries(SAFE_TEXT, metadata_values, max_size=5),
        chunk_index=st.integers(min_value=0, max_value=2**31 - 1),
    )
    async def test_roundtrip_property(
        self,
        document_store: DocumentStore,
        text: str,
        created: datetime,
        occurred: datetime | None,
        tags: tuple[str, ...],
        metadata: dict[str, object],
        chunk_index: int,
    ) -> None:
        """Arbitrary text, datetimes, tags and metadata round-trip exactly."""
        bank = new_bank()
        await document_store.create_bank(bank)
        original = MemoryRecord(
            id="r",
            bank_id=bank,
            text=text,
            source_id="s",
            chunk_index=chunk_index,
            content_type="text",
            created_at=created,
            occurred_at=occurred,
            tags=tags,
            metadata=metadata,  # type: ignore[arg-type]
            content_hash="",
        )
        await document_store.put([original])
        [got] = await document_store.get(bank, ["r"])
        assert got == original
        assert typed_metadata(got.metadata) == typed_metadata(original.metadata)

    async def test_get_keeps_requested_order_and_skips_missing(
        self, document_store: DocumentStore
    ) -> None:
        """get returns existing ids in the order asked and skips the rest."""
        bank = new_bank()
        await document_store.create_bank(bank)
        await document_store.put([record(bank, f"m{i}") for i in range(5)])
        got = await document_store.get(bank, ["m3", "nope", "m0", "m4"])
        assert [r.id for r in got] == ["m3", "m0", "m4"]
        assert await document_store.get(bank, []) == []
        assert await document_store.get(new_bank("unknown"), ["m0"]) == []

    async def test_put_replaces_same_id(self, document_store: DocumentStore) -> None:
        """Putting an id again replaces text, tags, metadata and time everywhere."""
        bank = new_bank()
        await document_store.create_bank(bank)
        first = record(
            bank,
            "m",
            "alpha apples orchard",
            tags=("old",),
            metadata={"v": 1},
            occurred_at=TIMES[0],
        )
        second = record(
            bank,
            "m",
            "bravo bananas plantation",
            tags=("new",),
            metadata={"v": 2},
            occurred_at=TIMES[3],
        )
        await document_store.put([first])
        await document_store.put([second])
        assert await document_store.count(bank) == 1
        assert await document_store.get(bank, ["m"]) == [second]
        assert await document_store.keyword_search(bank, "apples", limit=10) == []
        assert _ids(await document_store.keyword_search(bank, "bananas", limit=10)) == ["m"]
        assert await document_store.find(bank, RecordFilter(tags=("old",))) == []
        assert await document_store.find(bank, RecordFilter(tags=("new",))) == ["m"]
        assert await document_store.find(bank, RecordFilter(metadata={"v": 1})) == []
        assert await document_store.find(bank, RecordFilter(time_to=TIMES[1])) == []
        assert await document_store.find(bank, RecordFilter(time_from=TIMES[3])) == ["m"]

    async def test_put_same_id_twice_in_one_batch_keeps_last(
        self, document_store: DocumentStore
    ) -> None:
        """Within one batch the last record for an id wins."""
        bank = new_bank()
        await document_store.create_bank(bank)
        await document_store.put(
            [record(bank, "m", "first text"), record(bank, "m", "second text")]
        )
        assert await document_store.count(bank) == 1
        [got] = await document_store.get(bank, ["m"])
        assert got.text == "second text"

    async def test_put_empty_batch_is_a_no_op(self, document_store: DocumentStore) -> None:
        """An empty put neither raises nor writes."""
        await document_store.put([])

    async def test_put_into_missing_bank_raises_and_writes_nothing(
        self, document_store: DocumentStore
    ) -> None:
        """A record for a missing bank raises BankNotFound and the batch is not written."""
        bank = new_bank()
        missing = new_bank("missing")
        await document_store.create_bank(bank)
        batch = [record(bank, "ok1"), record(missing, "bad"), record(bank, "ok2")]
        with pytest.raises(BankNotFound):
            await document_store.put(batch)
        assert await document_store.count(bank) == 0
        assert await document_store.get(bank, ["ok1", "ok2"]) == []
        assert not await document_store.bank_exists(missing)

    async def test_put_rejects_naive_datetimes(self, document_store: DocumentStore) -> None:
        """Naive datetimes raise ValidationError and the batch is not written."""
        bank = new_bank()
        await document_store.create_bank(bank)
        naive = record(bank, "n", created_at=datetime(2024, 1, 1))
        with pytest.raises(ValidationError):
            await document_store.put([record(bank, "ok"), naive])
        assert await document_store.count(bank) == 0

    # ------------------------------------------------------------------ isolation

    async def test_banks_are_isolated(self, document_store: DocumentStore) -> None:
        """Nothing crosses banks in get, find, keyword search, count or delete."""
        a, b = new_bank("a"), new_bank("b")
        for bank in (a, b):
            await document_store.create_bank(bank)
        await document_store.put(
            [
                record(a, "shared", "walrus tusk", tags=("t",), occurred_at=TIMES[1]),
                record(a, "only-a", "walrus flipper", tags=("t",), occurred_at=TIMES[2]),
            ]
        )
        await document_store.put(
            [
                record(b, "shared", "penguin beak", tags=("t",), occurred_at=TIMES[1]),
                record(b, "only-b", "walrus penguin", tags=("t",), occurred_at=TIMES[2]),
            ]
        )
        [shared_a] = await document_store.get(a, ["shared", "only-b"])
        assert shared_a.text == "walrus tusk"
        assert shared_a.bank_id == a
        assert sorted(await document_store.find(a, RecordFilter())) == ["only-a", "shared"]
        assert sorted(await document_store.find(a, RecordFilter(tags=("t",)))) == [
            "only-a",
            "shared",
        ]
        assert await document_store.find(a, RecordFilter(ids=frozenset({"only-b"}))) == []
        assert sorted(_ids(await document_store.keyword_search(a, "walrus", limit=10))) == [
            "only-a",
            "shared",
        ]
        assert await document_store.keyword_search(a, "penguin", limit=10) == []
        assert await document_store.count(a) == 2
        assert await document_store.delete(a, ["shared", "only-b"]) == 1
        assert await document_store.count(b) == 2
        [shared_b] = await document_store.get(b, ["shared"])
        assert shared_b.text == "penguin beak"
        assert _ids(await document_store.keyword_search(b, "beak", limit=10)) == ["shared"]

    # ------------------------------------------------------------------ find / filters

    @SUITE_SETTINGS
    @given(data=st.data(), specs=st.lists(payloads, min_size=1, max_size=12))
    async def test_filters_match_reference_semantics(
        self, document_store: DocumentStore, data: st.DataObject, specs: list[Payload]
    ) -> None:
        """find and keyword search apply filters exactly like the reference semantics."""
        bank = new_bank()
        await document_store.create_bank(bank)
        records = [
            record(
                bank,
                f"m{i}",
                f"zebra stripe{i}",
                tags=p.tags,
                occurred_at=p.occurred_at,
                metadata=p.metadata,
            )
            for i, p in enumerate(specs)
        ]
        await document_store.put(records)
        where = data.draw(filters([r.id for r in records]), label="where")
        expected = {r.id for r in records if reference_matches(where, r)}
        found = await document_store.find(bank, where)
        assert len(found) == len(set(found))
        assert set(found) == expected
        hits = await document_store.keyword_search(bank, "zebra", limit=100, where=where)
        assert {h.id for h in hits} == expected

    async def test_time_filter_is_half_open(self, document_store: DocumentStore) -> None:
        """Time filters are [time_from, time_to); undated memories never match."""
        bank = new_bank()
        await document_store.create_bank(bank)
        await document_store.put(
            [
                record(bank, "before", occurred_at=TIMES[0]),
                record(bank, "at-from", occurred_at=TIMES[1]),
                record(bank, "inside", occurred_at=TIMES[1] + timedelta(microseconds=1)),
                record(bank, "just-before-to", occurred_at=TIMES[2] - timedelta(microseconds=1)),
                record(bank, "at-to", occurred_at=TIMES[2]),
                record(bank, "undated"),
            ]
        )
        window = RecordFilter(time_from=TIMES[1], time_to=TIMES[2])
        assert set(await document_store.find(bank, window)) == {
            "at-from",
            "inside",
            "just-before-to",
        }
        assert set(await document_store.find(bank, RecordFilter(time_from=TIMES[1]))) == {
            "at-from",
            "inside",
            "just-before-to",
            "at-to",
        }
        assert set(await document_store.find(bank, RecordFilter(time_to=TIMES[1]))) == {"before"}
        other_tz = RecordFilter(time_from=TIMES[1].astimezone(timezone(timedelta(hours=9))))
        assert "at-from" in await document_store.find(bank, other_tz)

    async def test_metadata_filter_is_json_typed(self, document_store: DocumentStore) -> None:
        """True matches only True, 1 matches 1 and 1.0, '1' only '1', None only null."""
        bank = new_bank()
        await document_store.create_bank(bank)
        await document_store.put(
            [
                record(bank, "true", metadata={"v": True}),
                record(bank, "one", metadata={"v": 1}),
                record(bank, "one-float", metadata={"v": 1.0}),
                record(bank, "str-one", metadata={"v": "1"}),
                record(bank, "false", metadata={"v": False}),
                record(bank, "zero", metadata={"v": 0}),
                record(bank, "null", metadata={"v": None}),
                record(bank, "absent", metadata={}),
            ]
        )

        async def ids(value: object) -> set[str]:
            where = RecordFilter(metadata={"v": value})  # type: ignore[dict-item]
            return set(await document_store.find(bank, where))

        assert await ids(True) == {"true"}
        assert await ids(False) == {"false"}
        assert await ids(1) == {"one", "one-float"}
        assert await ids(1.0) == {"one", "one-float"}
        assert await ids(0) == {"zero"}
        assert await ids("1") == {"str-one"}
        assert await ids(None) == {"null"}

    async def test_metadata_keys_with_special_characters(
        self, document_store: DocumentStore
    ) -> None:
        """Metadata keys with dots, quotes, brackets or non-ASCII filter correctly."""
        bank = new_bank()
        await document_store.create_bank(bank)
        keys = ["", "a.b", 'q"uote', "sp ace", "ünï", "[0]", "$", "back\\slash", "a'b"]
        await document_store.put(
            [record(bank, f"m{i}", metadata={key: "yes", "other": i}) for i, key in enumerate(keys)]
        )
        for i, key in enumerate(keys):
            assert await document_store.find(bank, RecordFilter(metadata={key: "yes"})) == [f"m{i}"]

    async def test_tag_filter_requires_all_tags(self, document_store: DocumentStore) -> None:
        """A tag filter requires every listed tag."""
        bank = new_bank()
        await document_store.create_bank(bank)
        await document_store.put(
            [
                record(bank, "ab", tags=("a", "b")),
                record(bank, "a", tags=("a",)),
                record(bank, "abc", tags=("a", "b", "c")),
                record(bank, "none"),
            ]
        )
        assert set(await document_store.find(bank, RecordFilter(tags=("a", "b")))) == {"ab", "abc"}
        assert set(await document_store.find(bank, RecordFilter(tags=("a",)))) == {
            "ab",
            "a",
            "abc",
        }
        assert await document_store.find(bank, RecordFilter(tags=("a", "zzz"))) == []

    async def test_find_orders_by_occurred_at_with_undated_last(
        self, document_store: DocumentStore
    ) -> None:
        """order='newest'/'oldest' sorts by occurred_at with undated memories last."""
        bank = new_bank()
        await document_store.create_bank(bank)
        # Inserted in an order unrelated to time, with undated ones in between.
        layout = [("t3", 3), ("u1", None), ("t0", 0), ("t4", 4), ("u2", None), ("t1", 1), ("t2", 2)]
        await document_store.put(
            [record(bank, mid, occurred_at=None if h is None else TIMES[h]) for mid, h in layout]
        )
        everything = RecordFilter()
        newest = await document_store.find(bank, everything, order="newest")
        oldest = await document_store.find(bank, everything, order="oldest")
        assert newest[:5] == ["t4", "t3", "t2", "t1", "t0"]
        assert oldest[:5] == ["t0", "t1", "t2", "t3", "t4"]
        assert set(newest[5:]) == set(oldest[5:]) == {"u1", "u2"}
        assert await document_store.find(bank, everything, order="newest", limit=2) == ["t4", "t3"]
        assert await document_store.find(bank, everything, order="oldest", limit=3) == [
            "t0",
            "t1",
            "t2",
        ]
        six = await document_store.find(bank, everything, order="oldest", limit=6)
        assert six[:5] == oldest[:5]
        assert six[5] in {"u1", "u2"}
        filtered = await document_store.find(
            bank, RecordFilter(ids=frozenset({"t1", "t3", "u1"})), order="newest"
        )
        assert filtered == ["t3", "t1", "u1"]

    async def test_find_limit_and_empty_filter(self, document_store: DocumentStore) -> None:
        """An empty filter matches every memory; limit caps the result."""
        bank = new_bank()
        await document_store.create_bank(bank)
        await document_store.put([record(bank, f"m{i}") for i in range(5)])
        assert sorted(await document_store.find(bank, RecordFilter())) == [
            f"m{i}" for i in range(5)
        ]
        assert len(await document_store.find(bank, RecordFilter(), limit=2)) == 2
        assert await document_store.find(bank, RecordFilter(), limit=0) == []
        assert await document_store.find(new_bank("unknown"), RecordFilter()) == []

    # ------------------------------------------------------------------ keyword search

    async def test_keyword_search_ranks_rarer_terms_higher(
        self, document_store: DocumentStore
    ) -> None:
        """BM25-style ranking: rarer query terms weigh more; scores never increase."""
        bank = new_bank()
        await document_store.create_bank(bank)
        common, rare, pad = unique_word(), unique_word(), unique_word()
        records = [record(bank, f"common{i}", f"{common} {unique_word()} {pad}") for i in range(2)]
        records.append(record(bank, "rare", f"{rare} orchard {pad} walk"))
        records.append(record(bank, "both", f"{common} {rare} {pad} walk"))
        records.append(record(bank, "neither", "violin concert music hall"))
        # Padding keeps `common` under the common-word share (3 of 13 memories).
        records.extend(record(bank, f"pad{i}", f"{unique_word()} {pad}") for i in range(8))
        await document_store.put(records)
        hits = await document_store.keyword_search(bank, f"{common} {rare}", limit=20)
        ids = _ids(hits)
        assert ids[0] == "both"
        assert ids[1] == "rare"
        assert set(ids[2:]) == {"common0", "common1"}
        assert "neither" not in ids
        scores = [h.score for h in hits]
        assert all(math.isfinite(s) for s in scores)
        assert scores == sorted(scores, reverse=True)
        assert scores[1] > scores[2]

    async def test_keyword_search_ignores_words_common_in_the_bank(
        self, document_store: DocumentStore
    ) -> None:
        """A word in over 30% of the bank's memories is ignored while the query has a
        rarer word — judged per bank, not over the whole store."""
        busy, quiet = new_bank(), new_bank()
        await document_store.create_bank(busy)
        await document_store.create_bank(quiet)
        name, rare, absent = unique_word(), unique_word(), unique_word()
        await document_store.put(
            [record(busy, f"n{i}", f"{name} says {unique_word()}") for i in range(12)]
            + [record(busy, "r", f"{name} mentions {rare}")]
            + [record(busy, f"o{i}", f"{unique_word()} {unique_word()}") for i in range(7)]
        )
        await document_store.put(
            [record(quiet, "q", f"{name} once")]
            + [record(quiet, f"o{i}", f"{unique_word()} {unique_word()}") for i in range(19)]
        )
        hits = await document_store.keyword_search(busy, f"{name} {rare}", limit=50)
        assert _ids(hits) == ["r"]
        assert await document_store.keyword_search(busy, f"{name} {absent}", limit=50) == []
        alone = await document_store.keyword_search(busy, name, limit=50)
        assert set(_ids(alone)) == {f"n{i}" for i in range(12)} | {"r"}
        # In a bank where the same word is rare, it is matched as usual.
        assert _ids(await document_store.keyword_search(quiet, f"{name} {absent}", limit=50)) == [
            "q"
        ]
        # Counts follow deletes: once the word is rare in `busy`, it matches again.
        await document_store.delete(busy, [f"n{i}" for i in range(12)])
        assert _ids(await document_store.keyword_search(busy, f"{name} {absent}", limit=50)) == [
            "r"
        ]

    async def test_keyword_search_is_case_insensitive(self, document_store: DocumentStore) -> None:
        """Keyword matching ignores case."""
        bank = new_bank()
        await document_store.create_bank(bank)
        await document_store.put(
            [record(bank, "upper", "ZEBRA Crossing"), record(bank, "lower", "zebra crossing")]
        )
        assert set(_ids(await document_store.keyword_search(bank, "Zebra", limit=10))) == {
            "upper",
            "lower",
        }

    async def test_keyword_search_any_term_may_match(self, document_store: DocumentStore) -> None:
        """A memory matching only some query words is still found."""
        bank = new_bank()
        await document_store.create_bank(bank)
        await document_store.put([record(bank, "m", "the tortoise sleeps")])
        hits = await document_store.keyword_search(bank, "tortoise helicopter submarine", limit=5)
        assert _ids(hits) == ["m"]

    async def test_keyword_search_respects_limit(self, document_store: DocumentStore) -> None:
        """keyword_search returns at most limit hits."""
        bank = new_bank()
        await document_store.create_bank(bank)
        await document_store.put([record(bank, f"m{i}", f"otter number {i}") for i in range(10)])
        assert len(await document_store.keyword_search(bank, "otter", limit=3)) == 3
        assert len(await document_store.keyword_search(bank, "otter", limit=50)) == 10
        assert await document_store.keyword_search(bank, "otter", limit=0) == []

    @pytest.mark.parametrize("query", SYNTAX_QUERIES_WITH_APPLE)
    async def test_keyword_query_syntax_is_never_interpreted(
        self, document_store: DocumentStore, query: str
    ) -> None:
        """Query syntax characters are plain text: the word next to them still matches."""
        bank = new_bank()
        await document_store.create_bank(bank)
        await document_store.put(
            [record(bank, "apple", "an apple a day"), record(bank, "pear", "a ripe pear")]
        )
        hits = await document_store.keyword_search(bank, query, limit=10)
        assert "apple" in _ids(hits)

    @pytest.mark.parametrize("query", QUERIES_WITHOUT_WORDS)
    async def test_keyword_query_without_words_returns_nothing(
        self, document_store: DocumentStore, query: str
    ) -> None:
        """A query with no words returns no hits (and does not raise)."""
        bank = new_bank()
        await document_store.create_bank(bank)
        await document_store.put([record(bank, "m", "some ordinary text")])
        assert await document_store.keyword_search(bank, query, limit=10) == []

    @pytest.mark.parametrize("query", ODD_QUERIES)
    async def test_keyword_odd_queries_never_raise(
        self, document_store: DocumentStore, query: str
    ) -> None:
        """Operators, huge, non-ASCII and stopword-only queries never raise."""
        bank = new_bank()
        await document_store.create_bank(bank)
        await document_store.put([record(bank, "m", "and or not near the a Straße 東京タワー")])
        hits = await document_store.keyword_search(bank, query, limit=10)
        assert all(isinstance(h, ScoredId) for h in hits)

    @SUITE_SETTINGS
    @given(query=SAFE_TEXT)
    async def test_keyword_arbitrary_text_never_raises(
        self, document_store: DocumentStore, query: str
    ) -> None:
        """Any text is a valid keyword query."""
        bank = new_bank()
        await document_store.create_bank(bank)
        await document_store.put(
            [record(bank, "m", 'a quick brown fox: jumps (over) "lazy" dogs*')]
        )
        hits = await document_store.keyword_search(bank, query, limit=5)
        assert {h.id for h in hits} <= {"m"}

    async def test_keyword_search_unknown_bank_is_empty(
        self, document_store: DocumentStore
    ) -> None:
        """Searching a bank that does not exist returns no hits."""
        assert await document_store.keyword_search(new_bank("unknown"), "anything", limit=5) == []

    # ------------------------------------------------------------------ delete / count

    async def test_delete_counts_and_is_idempotent(self, document_store: DocumentStore) -> None:
        """delete counts the ids that existed, is idempotent and removes them everywhere."""
        bank = new_bank()
        await document_store.create_bank(bank)
        await document_store.put(
            [record(bank, i, f"heron {i}", tags=("t",)) for i in ("a", "b", "c")]
        )
        assert await document_store.delete(bank, ["a", "b", "missing", "a"]) == 2
        assert await document_store.delete(bank, ["a", "b"]) == 0
        assert await document_store.delete(bank, []) == 0
        assert await document_store.delete(new_bank("unknown"), ["c"]) == 0
        assert await document_store.count(bank) == 1
        assert [r.id for r in await document_store.get(bank, ["a", "b", "c"])] == ["c"]
        assert await document_store.find(bank, RecordFilter(tags=("t",))) == ["c"]
        assert _ids(await document_store.keyword_search(bank, "heron", limit=10)) == ["c"]
        # A deleted id can be written again.
        await document_store.put([record(bank, "a", "heron again")])
        assert await document_store.count(bank) == 2

    async def test_count(self, document_store: DocumentStore) -> None:
        """count is the number of memories in the bank."""
        bank = new_bank()
        await document_store.create_bank(bank)
        assert await document_store.count(bank) == 0
        await document_store.put([record(bank, f"m{i}") for i in range(7)])
        assert await document_store.count(bank) == 7
        assert await document_store.count(new_bank("unknown")) == 0

    # ------------------------------------------------------------------ content hashes

    async def test_find_by_content_hash(self, document_store: DocumentStore) -> None:
        """Each present hash maps to a memory holding it; absent, empty and other banks'
        hashes are left out; deletes and replacements are reflected."""
        bank, other = new_bank(), new_bank("other")
        for b in (bank, other):
            await document_store.create_bank(b)

        def hashed(b: str, memory_id: str, digest: str) -> MemoryRecord:
            return replace(record(b, memory_id), content_hash=digest)

        await document_store.put(
            [
                hashed(bank, "a", "h-shared"),
                hashed(bank, "b", "h-shared"),
                hashed(bank, "c", "h-c"),
                hashed(bank, "empty", ""),
            ]
        )
        await document_store.put([hashed(other, "x", "h-other"), hashed(other, "y", "h-c")])
        found = await document_store.find_by_content_hash(
            bank, ["h-shared", "h-c", "h-other", "h-missing", ""]
        )
        assert set(found) == {"h-shared", "h-c"}
        assert found["h-shared"] in {"a", "b"}
        assert found["h-c"] == "c"
        assert await document_store.find_by_content_hash(bank, []) == {}
        assert await document_store.find_by_content_hash(new_bank("unknown"), ["h-c"]) == {}
        assert await document_store.find_by_content_hash(other, ["h-c"]) == {"h-c": "y"}
        # A deleted memory no longer answers; the other holder of the hash still does.
        first = found["h-shared"]
        await document_store.delete(bank, [first])
        assert await document_store.find_by_content_hash(bank, ["h-shared"]) == {
            "h-shared": ({"a", "b"} - {first}).pop()
        }
        # Replacing a record's content replaces its hash.
        await document_store.put([hashed(bank, "c", "h-new")])
        assert await document_store.find_by_content_hash(bank, ["h-c", "h-new"]) == {"h-new": "c"}

    async def test_find_by_content_hash_many(self, document_store: DocumentStore) -> None:
        """A lookup of many hashes at once (a retain batch) answers every one."""
        bank = new_bank()
        await document_store.create_bank(bank)
        await document_store.put(
            [replace(record(bank, f"m{i}"), content_hash=f"h{i}") for i in range(300)]
        )
        asked = [f"h{i}" for i in range(0, 600, 2)]
        found = await document_store.find_by_content_hash(bank, asked)
        assert found == {f"h{i}": f"m{i}" for i in range(0, 300, 2)}

    async def test_health_is_ok(self, document_store: DocumentStore) -> None:
        """A working store reports healthy."""
        status = await document_store.health()
        assert status.ok, status.detail
