"""The one place that turns a ranked candidate into a public hit with provenance."""

from __future__ import annotations

from astrocyte.recall.rerank import Candidate
from astrocyte.types import Provenance, RecallHit


def to_hit(candidate: Candidate) -> RecallHit:
    """Public hit for a candidate: text, score, strategy ranks and full provenance."""
    record = candidate.record
    return RecallHit(
        memory_id=record.id,
        text=record.text,
        score=round(candidate.score, 6),
        ranks=dict(candidate.ranks),
        provenance=Provenance(
            memory_id=record.id,
            bank_id=record.bank_id,
            source_id=record.source_id,
            chunk_index=record.chunk_index,
            content_type=record.content_type,
            occurred_at=record.occurred_at,
            created_at=record.created_at,
            tags=list(record.tags),
            metadata=dict(record.metadata),
        ),
        origin=candidate.origin,
    )
