"""LoCoMo: does recall find the conversation turns a question's answer rests on?

LoCoMo (Maharana et al., 2024) is a JSON list of samples, each one long two-person
conversation plus questions about it. The parts used here::

    {"sample_id": "...",
     "conversation": {"speaker_a": "...", "speaker_b": "...",
                      "session_1_date_time": "1:56 pm on 8 May, 2023",
                      "session_1": [{"speaker": "...", "dia_id": "D1:1", "text": "...",
                                     "blip_caption": "..." (image turns only)}, ...],
                      ...},
     "qa": [{"question": "...", "answer": "...", "evidence": ["D1:3", ...],
             "category": 1..5}, ...]}

Any other key (``event_summary``, ``observation``, ``session_summary``, ``img_url``,
...) is ignored. Categories: 1 multi-hop, 2 temporal, 3 open-domain, 4 single-hop,
5 adversarial (unanswerable by design; often ``adversarial_answer`` instead of
``answer``). Category 5 is reported separately and is not part of ``overall``.

Each sample goes into a fresh bank of a fresh store, one memory per turn, as a user
would retain a chat (``"{speaker}: {text}"``, image captions appended, the session's
date as ``occurred_at``, ``session_id``/``turn_id``/``speaker`` metadata). Every
question is then recalled with ``max_results = max(k)`` and scored on the turn ids of
the hits, without any LLM:

* ``recall@k``: fraction of evidence turns among the top ``k`` hits; ``recall_all@k``
  (all of them there), ``recall_any@k`` (at least one there);
* ``session_recall@k``: fraction of the evidence's sessions among the sessions of the
  top ``k`` hits;
* ``mrr``: reciprocal rank of the first evidence turn among the ``max(k)`` hits;
* ``ndcg@k``: binary-relevance NDCG of the turn ranking.

Evidence ids are parsed defensively (the public file has ``"D8:6; D9:17"``,
``"D 4:10"``, ``"D3:05"``, empty lists); ids naming no turn of the conversation are
dropped and counted, and questions left with no evidence are skipped and counted.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from astrocyte.bench.metrics import (
    dedupe_preserving_order,
    ndcg_at_k,
    recall_all_at_k,
    recall_any_at_k,
    recall_at_k,
    reciprocal_rank,
    summarise,
    summarise_by_group,
)
from astrocyte.bench.quality import (
    DEFAULT_KS,
    Progress,
    QualityRun,
    RungState,
    check_ks,
    check_limit,
    parse_iso_datetime,
    read_json_list,
    render_report,
    safe_bank_id,
    summary_json,
)
from astrocyte.config.loader import ConfigSource
from astrocyte.spi import Embedder, MetadataValue
from astrocyte.types import RecallHit

__all__ = [
    "ADVERSARIAL",
    "CATEGORIES",
    "EvidenceIds",
    "LocomoQuestion",
    "LocomoSample",
    "LocomoTurn",
    "hit_turn_ids",
    "parse_evidence",
    "parse_locomo",
    "parse_session_datetime",
    "parse_turn_id",
    "render_report",
    "run_locomo",
    "score_question",
]

CATEGORIES: Mapping[int, str] = {
    1: "multi-hop",
    2: "temporal",
    3: "open-domain",
    4: "single-hop",
    5: "adversarial",
}
"""LoCoMo's question categories by number."""

ADVERSARIAL = 5
"""The adversarial category, scored separately from ``overall``."""

_TURN_ID = re.compile(r"D\s*(\d+)\s*:\s*(\d+)", re.IGNORECASE)
_SESSION_KEY = re.compile(r"^session_(\d+)$")

# ----------------------------------------------------------------------------- parsing


def parse_turn_id(raw: object) -> str | None:
    """A dialogue id as ``"D<session>:<turn>"`` without leading zeros or spaces
    (``" D 3:05 "`` → ``"D3:5"``); ``None`` unless ``raw`` is exactly one id."""
    if not isinstance(raw, str):
        return None
    match = _TURN_ID.fullmatch(raw.strip())
    if match is None:
        return None
    return f"D{int(match.group(1))}:{int(match.group(2))}"


@dataclass(frozen=True, slots=True)
class EvidenceIds:
    """Canonical evidence turn ids (distinct, in order) and how many entries held none."""

    ids: tuple[str, ...]
    junk: int


def parse_evidence(raw: object) -> EvidenceIds:
    """Evidence turn ids of one question, tolerating the public file's quirks.

    ``raw`` is normally a list of ``"D<s>:<t>"`` strings, but one string may hold
    several ids (``"D8:6; D9:17"``, ``"D1:3,D1:5"``), ids may carry spaces or leading
    zeros (``"D 4:10"``, ``"D3:05"``), and entries may be junk (numbers, ``None``,
    empty strings): every id found is kept, canonical (see :func:`parse_turn_id`), and
    each entry without one counts as junk. A bare string is one entry; a missing
    (``None``) evidence field is an empty list.
    """
    if raw is None:
        entries: Sequence[object] = []
    elif isinstance(raw, str):
        entries = [raw]
    elif isinstance(raw, list | tuple):
        entries = raw
    else:
        entries = [raw]
    ids: list[str] = []
    junk = 0
    for entry in entries:
        found = _TURN_ID.findall(entry) if isinstance(entry, str) else []
        if not found:
            junk += 1
        ids.extend(f"D{int(session)}:{int(turn)}" for session, turn in found)
    return EvidenceIds(tuple(dedupe_preserving_order(ids)), junk)


_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}
_IGNORED_WORDS = frozenset(
    {"on", "at", "of", "the", "st", "nd", "rd", "th"}
    | {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}
    | {"mon", "tue", "tues", "wed", "thu", "thur", "thurs", "fri", "sat", "sun"}
)
# "1:56 pm", "1:56pm", "1 p.m.", "13:56". Only the am/pm form may omit the minutes, so
# a bare day number is never read as an hour.
_CLOCK = re.compile(
    r"\b(\d{1,2})(?:[:.](\d{2}))?\s*([ap])\.?\s?m\b\.?|\b(\d{1,2}):(\d{2})\b", re.IGNORECASE
)
_TOKENS = re.compile(r"[A-Za-z]+|\d+")


def parse_session_datetime(raw: object) -> datetime | None:
    """A LoCoMo session time (``"1:56 pm on 8 May, 2023"``) or ISO-8601, as UTC.

    Accepted: ISO-8601; otherwise an optional clock time (``1:56 pm``, ``1 p.m.``,
    ``13:56``) plus a date made of a day number (ordinal suffixes allowed), a month
    name or abbreviation and a four-digit year in any order, with ``on``/``of``,
    weekdays and punctuation ignored. No time means midnight. The data has no time
    zone; times are taken as UTC, as the core does for naive times. Anything else
    (missing, ``"sometime in spring"``, 30 February) is ``None``.
    """
    if not isinstance(raw, str) or not raw.strip():
        return None
    text = raw.strip()
    iso = parse_iso_datetime(text)
    if iso is not None:
        return iso
    hour = minute = 0
    clock = _CLOCK.search(text)
    if clock is not None:
        if clock.group(3) is not None:
            hour = int(clock.group(1))
            minute = int(clock.group(2) or 0)
            if not 1 <= hour <= 12:
                return None
            # 12 am is midnight, 12 pm is noon.
            hour = hour % 12 + (12 if clock.group(3).lower() == "p" else 0)
        else:
            hour, minute = int(clock.group(4)), int(clock.group(5))
        text = text[: clock.start()] + " " + text[clock.end() :]
    day = month = year = None
    for token in _TOKENS.findall(text):
        word = token.lower()
        if word in _IGNORED_WORDS:
            continue
        if word in _MONTHS and month is None:
            month = _MONTHS[word]
        elif token.isdigit() and len(token) == 4 and year is None:
            year = int(token)
        elif token.isdigit() and len(token) <= 2 and day is None:
            day = int(token)
        else:
            return None
    if day is None or month is None or year is None:
        return None
    try:
        return datetime(year, month, day, hour, minute, tzinfo=UTC)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class LocomoTurn:
    """One conversation turn, ready to retain."""

    turn_id: str
    session: int
    speaker: str
    content: str
    occurred_at: datetime | None

    def item(self) -> dict[str, Any]:
        """The ``retain_many`` item for this turn."""
        metadata: dict[str, MetadataValue] = {
            "session_id": self.session,
            "turn_id": self.turn_id,
            "speaker": self.speaker,
        }
        out: dict[str, Any] = {
            "content": self.content,
            "metadata": metadata,
            "source": self.turn_id,
            "content_type": "conversation",
        }
        if self.occurred_at is not None:
            out["occurred_at"] = self.occurred_at
        return out


@dataclass(frozen=True, slots=True)
class LocomoQuestion:
    """A scorable question: its category and the evidence turns found in the sample."""

    index: int
    question: str
    category: int | None
    group: str
    evidence: frozenset[str]


@dataclass(frozen=True, slots=True)
class LocomoSample:
    """One conversation with its scorable questions."""

    sample_id: str
    turns: tuple[LocomoTurn, ...]
    questions: tuple[LocomoQuestion, ...]


def _counters() -> dict[str, int]:
    return dict.fromkeys(
        (
            "samples_malformed",
            "sessions",
            "sessions_without_date",
            "turns",
            "turns_skipped_empty",
            "turn_ids_synthesised",
            "questions",
            "questions_malformed",
            "questions_without_evidence",
            "questions_unknown_category",
            "evidence_junk_entries",
            "evidence_ids_dangling",
        ),
        0,
    )


def parse_locomo(data: Sequence[Any]) -> tuple[list[LocomoSample], dict[str, int]]:
    """Samples from the loaded JSON list, and counters of everything skipped or odd.

    Malformed samples and questions are skipped (counted), never fatal: one bad entry
    should not void a run over the whole file.
    """
    stats = _counters()
    samples: list[LocomoSample] = []
    for index, raw in enumerate(data):
        conversation = raw.get("conversation") if isinstance(raw, dict) else None
        if not isinstance(conversation, dict):
            stats["samples_malformed"] += 1
            continue
        sample_id = str(raw.get("sample_id") or f"sample-{index}")
        turns = _parse_turns(conversation, stats)
        known = {turn.turn_id for turn in turns}
        questions = _parse_questions(raw.get("qa"), known, stats)
        samples.append(LocomoSample(sample_id, tuple(turns), tuple(questions)))
    return samples, stats


def _parse_turns(conversation: Mapping[str, Any], stats: dict[str, int]) -> list[LocomoTurn]:
    sessions = sorted(
        (int(match.group(1)), key)
        for key in conversation
        if (match := _SESSION_KEY.match(str(key))) and isinstance(conversation[key], list)
    )
    turns: list[LocomoTurn] = []
    for number, key in sessions:
        stats["sessions"] += 1
        when = parse_session_datetime(conversation.get(f"{key}_date_time"))
        if when is None:
            stats["sessions_without_date"] += 1
        for position, raw in enumerate(conversation[key], start=1):
            if not isinstance(raw, dict):
                stats["turns_skipped_empty"] += 1
                continue
            speaker = str(raw.get("speaker") or "unknown").strip() or "unknown"
            text = raw.get("text")
            text = "" if text is None else str(text).strip()
            caption = raw.get("blip_caption")
            if isinstance(caption, str) and caption.strip():
                text = f"{text} [shared a photo: {caption.strip()}]".strip()
            if not text:
                stats["turns_skipped_empty"] += 1
                continue
            turn_id = parse_turn_id(raw.get("dia_id"))
            if turn_id is None:
                # Position in the session is the best guess evidence could refer to.
                turn_id = f"D{number}:{position}"
                stats["turn_ids_synthesised"] += 1
            stats["turns"] += 1
            turns.append(LocomoTurn(turn_id, number, speaker, f"{speaker}: {text}", when))
    return turns


def _parse_questions(qa: object, known: set[str], stats: dict[str, int]) -> list[LocomoQuestion]:
    questions: list[LocomoQuestion] = []
    for index, item in enumerate(qa if isinstance(qa, list) else []):
        stats["questions"] += 1
        question = item.get("question") if isinstance(item, dict) else None
        if not isinstance(question, str) or not question.strip():
            stats["questions_malformed"] += 1
            continue
        category = _category(item.get("category"))
        group = CATEGORIES.get(category, f"category-{category}") if category else "unknown"
        if category not in CATEGORIES:
            stats["questions_unknown_category"] += 1
        evidence = parse_evidence(item.get("evidence"))
        stats["evidence_junk_entries"] += evidence.junk
        present = frozenset(i for i in evidence.ids if i in known)
        stats["evidence_ids_dangling"] += len(evidence.ids) - len(present)
        if not present:
            stats["questions_without_evidence"] += 1
            continue
        questions.append(LocomoQuestion(index, question.strip(), category, group, present))
    return questions


def _category(raw: object) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str) and raw.strip().isdigit():
        return int(raw.strip())
    return None


# ----------------------------------------------------------------------------- scoring


def _session_of(turn_id: str) -> str:
    # "D3:5" -> "D3"; a placeholder for a hit without a turn id stays its own session.
    head, sep, _ = turn_id.partition(":")
    return head if sep and head.startswith("D") else turn_id


def hit_turn_ids(hits: Sequence[RecallHit]) -> list[str]:
    """Distinct turn ids of the hits, best first. A hit without a ``turn_id`` keeps
    its rank as a never-relevant placeholder rather than shifting later hits up."""
    return dedupe_preserving_order(
        value
        if isinstance(value := h.provenance.metadata.get("turn_id"), str)
        else f"?{h.memory_id}"
        for h in hits
    )


def score_question(
    retrieved: Sequence[str], evidence: frozenset[str], ks: Sequence[int]
) -> dict[str, float]:
    """Every LoCoMo metric of one question from its retrieved turn ids (distinct, best
    first) and its evidence turn ids; see the module docstring for the definitions."""
    sessions = frozenset(_session_of(t) for t in evidence)
    scores: dict[str, float] = {}
    for k in ks:
        scores[f"recall@{k}"] = recall_at_k(retrieved, evidence, k)
    for k in ks:
        scores[f"recall_all@{k}"] = recall_all_at_k(retrieved, evidence, k)
    for k in ks:
        scores[f"recall_any@{k}"] = recall_any_at_k(retrieved, evidence, k)
    for k in ks:
        top_sessions = dedupe_preserving_order(_session_of(t) for t in retrieved[:k])
        scores[f"session_recall@{k}"] = recall_at_k(top_sessions, sessions, k)
    scores["mrr"] = reciprocal_rank(retrieved[: max(ks)], evidence)
    for k in ks:
        scores[f"ndcg@{k}"] = ndcg_at_k(retrieved, evidence, k)
    return scores


def _rung_metrics(rung: RungState) -> dict[str, Any]:
    scored = [(g, m) for g, m in rung.rows if g in _SCORED_GROUPS]
    separate = [(g, m) for g, m in rung.rows if g not in _SCORED_GROUPS]
    groups = summarise_by_group(scored)
    others = summarise_by_group(separate)
    return {
        "overall": summary_json(summarise(m for _, m in scored)) if scored else None,
        "groups": {g: groups[g].to_json() for g in _ORDER if g in groups},
        "separate": {
            g: others[g].to_json()
            for g in sorted(others, key=lambda g: (g not in _ORDER, _rank(g)))
        },
    }


_ORDER = [CATEGORIES[c] for c in sorted(CATEGORIES)]


def _rank(group: str) -> str:
    # Known categories in LoCoMo's numeric order, any others after them by name.
    return f"{_ORDER.index(group):03d}" if group in _ORDER else group


_SCORED_GROUPS = frozenset(name for number, name in CATEGORIES.items() if number != ADVERSARIAL)


def _display(ks: Sequence[int]) -> list[str]:
    ndcg = 10 if 10 in ks else max(ks)
    return [
        *(f"recall@{k}" for k in ks),
        *(f"session_recall@{k}" for k in ks),
        "mrr",
        f"ndcg@{ndcg}",
    ]


# ------------------------------------------------------------------------------ runner


async def run_locomo(
    data: str | Path,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    config: ConfigSource = None,
    ablation: bool = False,
    limit: int | None = None,
    embedder: Embedder | None = None,
    progress: Progress | None = None,
    details: bool = False,
) -> dict[str, Any]:
    """Run LoCoMo retrieval scoring on the file at ``data``; returns the JSON report.

    ``ks``: cut-offs to score (recall asks for ``max(ks)`` hits). ``config``: an
    ``astrocyte.yaml`` path, mapping or config (``None``: zero config); embedded
    storage goes to a temporary directory. ``ablation``: measure the ladder
    keyword → semantic → rrf → +graph → +temporal → +rerank instead of the config's
    own recall. ``limit``: only the first ``limit`` samples. ``embedder``: reuse a
    loaded embedder (not closed). ``progress``: receives progress lines.
    ``details``: include every question's gold and retrieved turn ids per rung.
    Render the result with :func:`render_report`.
    """
    cutoffs = check_ks(ks)
    maximum = check_limit(limit)
    # Config problems surface before a possibly large data file is read.
    run = QualityRun(config, ablation=ablation, embedder=embedder, progress=progress)
    # Reading and decoding a large file would otherwise stall the event loop.
    loaded = await asyncio.to_thread(read_json_list, data, "samples")
    raw = loaded.items
    samples, stats = parse_locomo(raw[:maximum] if maximum else raw)
    categories: dict[str, int] = {}
    for sample in samples:
        for question in sample.questions:
            categories[question.group] = categories.get(question.group, 0) + 1
    async with run:
        for number, sample in enumerate(samples, start=1):
            bank = safe_bank_id("locomo", sample.sample_id)
            dates = [t.occurred_at for t in sample.turns if t.occurred_at is not None]
            asked_at = max(dates) if dates else None
            async with run.session() as session:
                memories = await session.ingest(bank, [t.item() for t in sample.turns])
                for rung in run.active_rungs:
                    for question in sample.questions:
                        # LoCoMo questions carry no date: they are asked after the
                        # last session, so that is "now" for relative dates.
                        hits = await session.recall(
                            rung, question.question, bank, max(cutoffs), now=asked_at
                        )
                        retrieved = hit_turn_ids(hits)
                        scores = score_question(retrieved, question.evidence, cutoffs)
                        rung.rows.append((question.group, scores))
                        if details:
                            rung.details.append(
                                {
                                    "sample_id": sample.sample_id,
                                    "index": question.index,
                                    "category": question.category,
                                    "question": question.question,
                                    "evidence": sorted(question.evidence),
                                    "retrieved": retrieved,
                                    "metrics": scores,
                                }
                            )
            run.say(
                f"locomo {number}/{len(samples)} {sample.sample_id}: {len(sample.turns)} turns "
                f"({memories} memories), {len(sample.questions)} questions"
            )
        return run.report(
            benchmark="locomo",
            dataset={
                "path": loaded.path,
                "sha256": loaded.sha256,
                "bytes": loaded.size,
                "samples": len(samples),
                "questions": stats["questions"],
                "evaluated": sum(len(s.questions) for s in samples),
                "evaluated_by_category": {
                    g: categories[g]
                    for g in sorted(categories, key=lambda g: (g not in _ORDER, _rank(g)))
                },
            },
            ks=cutoffs,
            limit=maximum,
            parsing=stats,
            group_label="category",
            display_metrics=_display(cutoffs),
            metrics=_rung_metrics,
        )
