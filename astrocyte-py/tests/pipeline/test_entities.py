"""Rule-based entity extraction: each kind, gazetteers, aliases, and measured quality."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from astrocyte.pipeline.entities import (
    EntityMention,
    Gazetteer,
    entity_id,
    extract_entities,
    extract_mentions,
    link_aliases,
    normalise_name,
    query_name_candidates,
)

LABELLED = Path(__file__).parent.parent / "data" / "entities_labelled.jsonl"
GAZETTEER = Gazetteer(
    {
        "org": ["Globex", "Acme Corp", "Initech"],
        "place": ["Porto", "New York", "London", "Berlin", "Paris"],
    }
)


def pairs(mentions: list[EntityMention]) -> list[tuple[str, str]]:
    return [(m.normalized, m.kind) for m in mentions]


def test_existing_api_still_links_names_and_their_words() -> None:
    mentions = extract_mentions("Did Alice Smith's cat meet @bob_w at #lisbon2024?")
    assert pairs(mentions) == [
        ("alice smith", "name"),
        ("alice", "name"),
        ("smith", "name"),
        ("@bob_w", "handle"),
        ("#lisbon2024", "hashtag"),
    ]
    assert mentions[0].name == "Alice Smith's"
    assert normalise_name(" Alice’s ") == "alice"
    assert entity_id("b", "alice") == entity_id("b", "alice") != entity_id("c", "alice")
    assert query_name_candidates("what did alice smith say")[:2] == ["alice", "smith"]


def test_each_kind() -> None:
    text = (
        'Priya emailed priya.k@example.org on 8 May 2023 about "The Name of the Wind"; '
        "@priya_k tagged #books. See https://Example.org/Some/Path too."
    )
    assert pairs(extract_entities(text)) == [
        ("priya", "name"),
        ("priya.k@example.org", "email"),
        ("2023-05-08", "date"),
        ("the name of the wind", "title"),
        ("@priya_k", "handle"),
        ("#books", "hashtag"),
    ]


def test_dates_titles_and_connectors() -> None:
    assert pairs(extract_entities("It is due 2024-06-03 or May 2, 2024; not 31 Feb 2024.")) == [
        ("2024-06-03", "date"),
        ("2024-05-02", "date"),
    ]
    # Speech is not a title; a title may use “curly” quotes and minor words.
    assert pairs(extract_entities('She said "see you soon" and hummed “Clair de Lune”.')) == [
        ("clair de lune", "title")
    ]
    assert pairs(
        extract_entities("He studied at the University of Lisbon and met Leonardo da Vinci.")
    ) == [
        ("university of lisbon", "name"),
        ("leonardo da vinci", "name"),
    ]
    words = [m.normalized for m in extract_mentions("the University of Lisbon")]
    assert words == ["university of lisbon", "university", "lisbon"]  # no "of"


def test_sentence_openers_are_not_names_but_known_names_are() -> None:
    assert pairs(extract_entities("Went hiking with Tomas. Cooking now. Honestly fine.")) == [
        ("tomas", "name")
    ]
    assert pairs(extract_entities("Finally finished. Dr. Okafor agreed.")) == [("okafor", "name")]
    # An opener that is a known name, or capitalised mid-sentence elsewhere, is kept.
    assert pairs(extract_entities("Hope called.", known_names=["Hope"])) == [("hope", "name")]
    assert pairs(extract_entities("Hope called. I thanked Hope.")) == [("hope", "name")]
    assert extract_entities("Hope you are well.") == []


def test_gazetteers() -> None:
    text = "Write to finance@globex.com: ACME CORP's deal with globex in new york, not @porto."
    assert pairs(extract_entities(text, gazetteers=GAZETTEER)) == [
        ("finance@globex.com", "email"),
        ("acme corp", "org"),
        ("globex", "org"),
        ("new york", "place"),
        ("@porto", "handle"),
    ]
    # A plain mapping works too; whole words only; the first kind listed wins.
    mapping = {"pet": ["Biscuit"], "food": ["biscuit", "tea"]}
    assert pairs(extract_entities("Biscuit ate a biscuits box, then tea.", gazetteers=mapping)) == [
        ("biscuit", "pet"),
        ("tea", "food"),
    ]
    assert pairs(extract_mentions("Acme Corp", gazetteers=GAZETTEER)) == [("acme corp", "org")]


def test_link_aliases() -> None:
    mentions = extract_mentions("Alice Smith met Bob. Later Alice and Smith's dog Rex left.")
    assert link_aliases(mentions) == {"alice": "alice smith", "smith": "alice smith"}
    # From known names when the text has no full name; ambiguity links nothing.
    assert link_aliases(extract_mentions("Bob called."), known_names=["Bob Jones"]) == {
        "bob": "bob jones"
    }
    ambiguous = extract_mentions("Ann Lee and Ann Moss came.")
    assert "ann" not in link_aliases(ambiguous)
    assert link_aliases(extract_mentions("Ann came."), ["Ann Lee", "Ann Moss"]) == {}
    # Places, organisations and events are not people with short names.
    assert link_aliases(extract_mentions("Lisbon Marathon day! Lisbon was hot.")) == {}
    assert link_aliases(extract_mentions("University of Lisbon. Lisbon.")) == {}
    # Identifiers are never aliases.
    handle = [EntityMention("@ann", "@ann", "handle"), EntityMention("Ann Lee", "ann lee", "name")]
    assert link_aliases(handle) == {}


def test_query_candidates_include_identifiers_and_dates() -> None:
    candidates = query_name_candidates("what did omar.h@example.org say on 8 May 2023 to @ops.team")
    assert {"omar.h@example.org", "2023-05-08", "@ops.team"} <= set(candidates)


# ----------------------------------------------------------- quality on labelled data


def _score(rows: list[dict[str, object]]) -> dict[str, Counter[str]]:
    counts: dict[str, Counter[str]] = {"tp": Counter(), "fp": Counter(), "fn": Counter()}
    for row in rows:
        expected = {(str(n), str(k)) for n, k in row["entities"]}  # type: ignore[attr-defined]
        got = set(pairs(extract_entities(str(row["text"]), gazetteers=GAZETTEER)))
        for _name, kind in got & expected:
            counts["tp"][kind] += 1
        for _name, kind in got - expected:
            counts["fp"][kind] += 1
        for _name, kind in expected - got:
            counts["fn"][kind] += 1
    return counts


def _pr(tp: int, fp: int, fn: int) -> tuple[float, float]:
    return (tp / (tp + fp) if tp + fp else 1.0, tp / (tp + fn) if tp + fn else 1.0)


def test_precision_and_recall_on_the_labelled_set() -> None:
    """Measured on our own invented sentences (tests/data/entities_labelled.jsonl).

    The "dev" rows were written before the rules and the rules were then tuned on
    them; the "heldout" rows were written after the rules were frozen and never used
    for tuning, so they are the honest estimate. Floors: P >= 0.9 and R >= 0.9 over
    everything; P >= 0.85 and R >= 0.8 on the held-out rows alone (measured 0.95 /
    1.00 there: two sentence-initial verbs, "Baked" and "Forgot", taken for names).
    """
    rows = [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines()]
    print()
    print(f"{'subset':<10} {'kind':<9} {'tp':>4} {'fp':>4} {'fn':>4} {'P':>6} {'R':>6}")
    results: dict[str, tuple[float, float]] = {}
    for subset in ("all", "dev", "heldout"):
        chosen = [r for r in rows if subset == "all" or r["split"] == subset]
        counts = _score(chosen)
        kinds = sorted(set(counts["tp"]) | set(counts["fp"]) | set(counts["fn"]))
        for kind in [*kinds, "overall"]:
            if kind == "overall":
                tp, fp, fn = (sum(counts[c].values()) for c in ("tp", "fp", "fn"))
            else:
                tp, fp, fn = (counts[c][kind] for c in ("tp", "fp", "fn"))
            precision, recall = _pr(tp, fp, fn)
            print(
                f"{subset:<10} {kind:<9} {tp:>4} {fp:>4} {fn:>4} {precision:>6.3f} {recall:>6.3f}"
            )
            if kind == "overall":
                results[subset] = (precision, recall)
    assert len(rows) >= 100
    assert results["all"][0] >= 0.9 and results["all"][1] >= 0.9
    assert results["heldout"][0] >= 0.85 and results["heldout"][1] >= 0.8


# ---------------------------------------------------------------------- properties

texts = st.lists(
    st.one_of(
        st.text(max_size=12),
        st.sampled_from(
            [
                "Alice",
                "Smith",
                "of",
                "the",
                "Went",
                "Dr.",
                ". ",
                "\n",
                '"',
                "“",
                "”",
                "@x_y",
                "#tag",
                "a@b.co",
                "8 May 2023",
                "2023-05-08",
                "Globex",
                "new york",
                "'s",
                " ",
            ]
        ),
    ),
    max_size=30,
).map(" ".join)


@settings(max_examples=100, deadline=None)
@given(text=texts)
def test_mentions_are_well_formed(text: str) -> None:
    entities = extract_entities(text, gazetteers=GAZETTEER)
    mentions = extract_mentions(text, gazetteers=GAZETTEER)
    assert extract_entities(text, gazetteers=GAZETTEER) == entities  # deterministic
    normalized = [m.normalized for m in mentions]
    assert len(normalized) == len(set(normalized))
    assert {m.normalized for m in entities} <= set(normalized)
    for mention in mentions:
        assert mention.name in text  # as written
        assert len(mention.normalized) >= 2
        if mention.kind != "date":
            assert mention.normalized == normalise_name(mention.normalized)
    aliases = link_aliases(mentions)
    for word, full in aliases.items():
        assert " " not in word and word in full.split()
        assert full in normalized


@pytest.mark.parametrize(
    ("text", "identifiers"),
    [
        ("Ticket OPS-5606 is about the sink.", ["ops-5606"]),
        ("We fly on TP1352 and return on TP1047.", ["tp1352", "tp1047"]),
        ("Invoice INV-21043 and part SKU_88-A12.", ["inv-21043", "sku_88-a12"]),
        ("Version 2.3, MP3 files, B2B sales, 2023-05-01, room 12.", []),
        ("mail ops-5606@corp.example or see #OPS-12 and @dev42", []),
    ],
)
def test_identifier_codes_are_entities(text: str, identifiers: list[str]) -> None:
    found = [m.normalized for m in extract_mentions(text) if m.kind == "identifier"]
    assert found == identifiers
