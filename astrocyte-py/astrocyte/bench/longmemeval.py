"""LongMemEval: does recall find the chat sessions (and turns) holding the answer?

LongMemEval (Wu et al., 2024) is a JSON list of instances, each one question asked
after a haystack of timestamped chat sessions. The parts used here::

    {"question_id": "...", "question_type": "single-session-user", "question": "...",
     "answer": "...", "question_date": "2023/05/30 (Tue) 23:40",
     "haystack_session_ids": ["...", ...],
     "haystack_dates": ["2023/05/20 (Sat) 02:21", ...],
     "haystack_sessions": [[{"role": "user", "content": "...", "has_answer": true},
                            {"role": "assistant", "content": "..."}, ...], ...],
     "answer_session_ids": ["...", ...]}

Abstention questions (``question_id`` ending in ``_abs``) have no evidence to find and
are skipped and counted. Each instance gets a fresh bank in a fresh store with one
memory per turn (``"{role}: {content}"``, the session's date as ``occurred_at``,
``session_id``/``turn_index``/``role``/``has_answer`` metadata); the question is
recalled with ``max_results = max(k)``. Without any LLM, per ``k``:

* sessions are ranked by their first appearance among the hits; ``session_recall_any@k``
  / ``session_recall_all@k`` say whether any / all answer sessions are among the top
  ``k`` sessions, ``session_recall@k`` which fraction, ``session_ndcg@k`` the NDCG of
  that session ranking (``session_mrr`` over all ranked sessions);
* ``turn_recall@k``: fraction of the ``has_answer`` turns among the top ``k`` hits,
  for the questions that mark any (its ``support`` in the report says how many).

Answer session ids that are not in the haystack are dropped and counted; a question
left with none is skipped and counted.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Sequence
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
    "QUESTION_TYPES",
    "LongMemEvalInstance",
    "LongMemEvalTurn",
    "hit_turn_keys",
    "parse_haystack_date",
    "parse_longmemeval",
    "render_report",
    "run_longmemeval",
    "score_question",
    "turn_key",
]

QUESTION_TYPES = (
    "single-session-user",
    "single-session-assistant",
    "single-session-preference",
    "multi-session",
    "temporal-reasoning",
    "knowledge-update",
)
"""LongMemEval's question types, in the order reports list them."""

_DATE = re.compile(
    r"^\s*(\d{4})[/-](\d{1,2})[/-](\d{1,2})"  # 2023/05/20
    r"(?:\s*\(\s*[A-Za-z]+\s*\))?"  # (Sat)
    r"(?:\s*[T ]?\s*(\d{1,2}):(\d{2})(?::(\d{2}))?)?\s*$"  # 02:21[:05]
)


def parse_haystack_date(raw: object) -> datetime | None:
    """A LongMemEval date (``"2023/05/20 (Sat) 02:21"``) or ISO-8601, as UTC.

    The weekday is ignored (not checked); a missing time is midnight; the data has no
    time zone, so times are taken as UTC. Anything else is ``None``.
    """
    if not isinstance(raw, str) or not raw.strip():
        return None
    match = _DATE.match(raw)
    if match is None:
        return parse_iso_datetime(raw)
    year, month, day, hour, minute, second = match.groups()
    try:
        return datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            tzinfo=UTC,
        )
    except ValueError:
        return None


def turn_key(session_id: str, turn_index: int) -> str:
    """The id of a turn within an instance: ``"{session_id}#{turn_index}"``."""
    return f"{session_id}#{turn_index}"


@dataclass(frozen=True, slots=True)
class LongMemEvalTurn:
    """One haystack turn, ready to retain."""

    session_id: str
    turn_index: int
    role: str
    content: str
    has_answer: bool
    occurred_at: datetime | None

    def item(self) -> dict[str, Any]:
        """The ``retain_many`` item for this turn."""
        metadata: dict[str, MetadataValue] = {
            "session_id": self.session_id,
            "turn_index": self.turn_index,
            "role": self.role,
            "has_answer": self.has_answer,
        }
        out: dict[str, Any] = {
            "content": f"{self.role}: {self.content}",
            "metadata": metadata,
            "source": turn_key(self.session_id, self.turn_index),
            "content_type": "conversation",
        }
        if self.occurred_at is not None:
            out["occurred_at"] = self.occurred_at
        return out


@dataclass(frozen=True, slots=True)
class LongMemEvalInstance:
    """A scorable question with its haystack."""

    question_id: str
    question_type: str
    question: str
    turns: tuple[LongMemEvalTurn, ...]
    answer_sessions: frozenset[str]
    answer_turns: frozenset[str]
    question_date: datetime | None = None


def _counters() -> dict[str, int]:
    return dict.fromkeys(
        (
            "instances",
            "abstention_skipped",
            "instances_malformed",
            "questions_without_answer_session",
            "answer_session_ids_dangling",
            "sessions",
            "sessions_without_date",
            "turns",
            "turns_skipped_empty",
        ),
        0,
    )


def parse_longmemeval(
    data: Sequence[Any],
) -> tuple[list[LongMemEvalInstance], dict[str, int]]:
    """Scorable instances from the loaded JSON list, and counters of what was skipped.

    Malformed instances are skipped and counted, never fatal.
    """
    stats = _counters()
    instances: list[LongMemEvalInstance] = []
    for index, raw in enumerate(data):
        stats["instances"] += 1
        if not isinstance(raw, dict):
            stats["instances_malformed"] += 1
            continue
        question_id = str(raw.get("question_id") or f"instance-{index}")
        if question_id.endswith("_abs"):
            stats["abstention_skipped"] += 1
            continue
        question = raw.get("question")
        sessions = raw.get("haystack_sessions")
        if not isinstance(question, str) or not question.strip() or not isinstance(sessions, list):
            stats["instances_malformed"] += 1
            continue
        session_ids = _as_list(raw.get("haystack_session_ids"))
        dates = _as_list(raw.get("haystack_dates"))
        turns: list[LongMemEvalTurn] = []
        known: set[str] = set()
        for position, session in enumerate(sessions):
            stats["sessions"] += 1
            session_id = str(
                session_ids[position] if position < len(session_ids) else f"session-{position}"
            )
            known.add(session_id)
            when = parse_haystack_date(dates[position] if position < len(dates) else None)
            if when is None:
                stats["sessions_without_date"] += 1
            for turn_index, turn in enumerate(session if isinstance(session, list) else []):
                parsed = _turn(turn, session_id, turn_index, when)
                if parsed is None:
                    stats["turns_skipped_empty"] += 1
                    continue
                stats["turns"] += 1
                turns.append(parsed)
        wanted = {str(s) for s in _as_list(raw.get("answer_session_ids"))}
        answer_sessions = frozenset(wanted & known)
        stats["answer_session_ids_dangling"] += len(wanted - known)
        if not answer_sessions:
            stats["questions_without_answer_session"] += 1
            continue
        instances.append(
            LongMemEvalInstance(
                question_id=question_id,
                question_type=str(raw.get("question_type") or "unknown"),
                question=question.strip(),
                turns=tuple(turns),
                answer_sessions=answer_sessions,
                answer_turns=frozenset(
                    turn_key(t.session_id, t.turn_index) for t in turns if t.has_answer
                ),
                question_date=parse_haystack_date(raw.get("question_date")),
            )
        )
    return instances, stats


def _as_list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _turn(
    raw: object, session_id: str, turn_index: int, when: datetime | None
) -> LongMemEvalTurn | None:
    if not isinstance(raw, dict):
        return None
    content = raw.get("content")
    content = "" if content is None else str(content).strip()
    if not content:
        return None
    flag = raw.get("has_answer")
    has_answer = flag if isinstance(flag, bool) else str(flag).strip().lower() == "true"
    role = str(raw.get("role") or "unknown").strip() or "unknown"
    return LongMemEvalTurn(session_id, turn_index, role, content, has_answer, when)


# ----------------------------------------------------------------------------- scoring


def hit_turn_keys(hits: Sequence[RecallHit]) -> list[tuple[str, str]]:
    """``(turn key, session id)`` of each distinct turn among the hits, best first. A
    hit without the metadata keeps its rank as a never-relevant placeholder."""
    out: dict[str, str] = {}
    for hit in hits:
        metadata = hit.provenance.metadata
        session, index = metadata.get("session_id"), metadata.get("turn_index")
        if isinstance(session, str) and isinstance(index, int) and not isinstance(index, bool):
            out.setdefault(turn_key(session, index), session)
        else:
            placeholder = f"?{hit.memory_id}"
            out.setdefault(placeholder, placeholder)
    return list(out.items())


def score_question(
    retrieved: Sequence[tuple[str, str]],
    answer_sessions: frozenset[str],
    answer_turns: frozenset[str],
    ks: Sequence[int],
) -> dict[str, float]:
    """Every LongMemEval metric of one question from its retrieved ``(turn key,
    session id)`` pairs (distinct turns, best first); see the module docstring.
    ``turn_recall@k`` is left out when the question marks no ``has_answer`` turn."""
    turns = [key for key, _ in retrieved]
    sessions = dedupe_preserving_order(session for _, session in retrieved)
    scores: dict[str, float] = {}
    for k in ks:
        scores[f"session_recall_any@{k}"] = recall_any_at_k(sessions, answer_sessions, k)
    for k in ks:
        scores[f"session_recall_all@{k}"] = recall_all_at_k(sessions, answer_sessions, k)
    for k in ks:
        scores[f"session_recall@{k}"] = recall_at_k(sessions, answer_sessions, k)
    for k in ks:
        scores[f"session_ndcg@{k}"] = ndcg_at_k(sessions, answer_sessions, k)
    scores["session_mrr"] = reciprocal_rank(sessions, answer_sessions)
    if answer_turns:
        for k in ks:
            scores[f"turn_recall@{k}"] = recall_at_k(turns, answer_turns, k)
    return scores


def _rung_metrics(rung: RungState) -> dict[str, Any]:
    groups = summarise_by_group(rung.rows)
    return {
        "overall": summary_json(summarise(m for _, m in rung.rows)) if rung.rows else None,
        "groups": {g: groups[g].to_json() for g in _type_order(groups)},
        "separate": {},
    }


def _type_order(types: Iterable[str]) -> list[str]:
    # LongMemEval's own order of types first, unknown ones after them by name.
    return sorted(
        types,
        key=lambda t: (
            t not in QUESTION_TYPES,
            QUESTION_TYPES.index(t) if t in QUESTION_TYPES else 0,
            t,
        ),
    )


def _display(ks: Sequence[int]) -> list[str]:
    ndcg = 10 if 10 in ks else max(ks)
    return [
        *(f"session_recall_any@{k}" for k in ks),
        *(f"session_recall_all@{k}" for k in ks),
        *(f"turn_recall@{k}" for k in ks),
        f"session_ndcg@{ndcg}",
    ]


# ------------------------------------------------------------------------------ runner


async def run_longmemeval(
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
    """Run LongMemEval retrieval scoring on the file at ``data``; returns the report.

    Arguments as for :func:`astrocyte.bench.locomo.run_locomo`; ``limit`` keeps the
    first ``limit`` instances of the file (abstention ones included, then skipped).
    Each instance is ingested into a fresh store that is deleted once its question is
    scored, so memory stays bounded by one haystack. Render with
    :func:`render_report`.
    """
    cutoffs = check_ks(ks)
    maximum = check_limit(limit)
    # Config problems surface before a possibly large data file is read.
    run = QualityRun(config, ablation=ablation, embedder=embedder, progress=progress)
    # Reading and decoding a large file would otherwise stall the event loop.
    loaded = await asyncio.to_thread(read_json_list, data, "instances")
    raw = loaded.items
    instances, stats = parse_longmemeval(raw[:maximum] if maximum else raw)
    types: dict[str, int] = {}
    for instance in instances:
        types[instance.question_type] = types.get(instance.question_type, 0) + 1
    async with run:
        for number, instance in enumerate(instances, start=1):
            bank = safe_bank_id("lme", instance.question_id)
            async with run.session() as session:
                await session.ingest(bank, [t.item() for t in instance.turns])
                for rung in run.active_rungs:
                    hits = await session.recall(
                        rung, instance.question, bank, max(cutoffs), now=instance.question_date
                    )
                    retrieved = hit_turn_keys(hits)
                    scores = score_question(
                        retrieved, instance.answer_sessions, instance.answer_turns, cutoffs
                    )
                    rung.rows.append((instance.question_type, scores))
                    if details:
                        rung.details.append(
                            {
                                "question_id": instance.question_id,
                                "question_type": instance.question_type,
                                "question": instance.question,
                                "answer_sessions": sorted(instance.answer_sessions),
                                "answer_turns": sorted(instance.answer_turns),
                                "retrieved": [key for key, _ in retrieved],
                                "metrics": scores,
                            }
                        )
            if number % 10 == 0 or number == len(instances):
                run.say(f"longmemeval {number}/{len(instances)} instances")
        return run.report(
            benchmark="longmemeval",
            dataset={
                "path": loaded.path,
                "sha256": loaded.sha256,
                "bytes": loaded.size,
                "instances": stats["instances"],
                "evaluated": len(instances),
                "evaluated_by_type": {t: types[t] for t in _type_order(types)},
            },
            ks=cutoffs,
            limit=maximum,
            parsing=stats,
            group_label="question_type",
            display_metrics=_display(cutoffs),
            metrics=_rung_metrics,
        )
