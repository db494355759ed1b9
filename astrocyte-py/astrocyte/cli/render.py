"""Human-readable rendering of results for the CLI."""

from __future__ import annotations

import textwrap
from typing import Any

from astrocyte.types import BankStats, RecallHit, RecallResult, ReflectResult


def recall(result: RecallResult) -> str:
    """Ranked hits with why they ranked and where they came from."""
    lines = [
        f'recall "{result.query}" in {", ".join(result.bank_ids)} — '
        f"{len(result.hits)} hit(s), {result.elapsed_ms:.1f} ms"
    ]
    if not result.hits:
        lines.append("  (no matching memories)")
    for number, hit in enumerate(result.hits, 1):
        lines.extend(_hit(number, hit))
    ran = [s for s in result.strategies if s.skipped is None and s.error is None]
    skipped = [f"{s.name} ({s.skipped})" for s in result.strategies if s.skipped]
    failed = [f"{s.name} ({s.error})" for s in result.strategies if s.error]
    lines.append("  strategies: " + ", ".join(sorted({s.name for s in ran})))
    if skipped:
        lines.append("  skipped: " + ", ".join(sorted(set(skipped))))
    if failed:
        lines.append("  FAILED: " + ", ".join(failed))
    return "\n".join(lines)


def _hit(number: int, hit: RecallHit) -> list[str]:
    ranks = " · ".join(f"{name} #{rank}" for name, rank in sorted(hit.ranks.items()))
    p = hit.provenance
    where = [f"memory {p.memory_id}", f"source {p.source_id}", f"chunk {p.chunk_index}"]
    if p.occurred_at:
        where.append(p.occurred_at.strftime("%Y-%m-%d %H:%M"))
    where.extend(f"{k}={v}" for k, v in p.metadata.items())
    if p.tags:
        where.append("tags " + ",".join(p.tags))
    text = textwrap.shorten(hit.text, width=220, placeholder=" …")
    return [
        f"  {number:>2}. [{hit.score:.4f}] {text}",
        f"      why: {ranks}",
        f"      from: {' · '.join(where)}",
    ]


def reflect(result: ReflectResult) -> str:
    """The answer followed by its citations."""
    lines = [result.answer, ""]
    if result.mode == "llm":
        lines.append(f"(answered by {result.model})")
    for citation in result.citations:
        lines.append(f"  cites {citation.memory_id}: {textwrap.shorten(citation.excerpt, 100)}")
    return "\n".join(lines)


def banks(items: list[BankStats]) -> str:
    """One line per bank."""
    if not items:
        return "(no banks yet)"
    width = max(len(b.bank_id) for b in items)
    return "\n".join(
        f"{b.bank_id:<{width}}  {b.memory_count:>8} memories  since {b.created_at:%Y-%m-%d}"
        for b in items
    )


def stats(data: dict[str, Any]) -> str:
    """Key/value listing."""
    return "\n".join(f"{key}: {value}" for key, value in data.items())
