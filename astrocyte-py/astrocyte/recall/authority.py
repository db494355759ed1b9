"""Recall authority: which recalled memories outrank which when they disagree.

Fusion decides what is *relevant*; authority says what is *trusted*. The two are kept
apart on purpose (see docs/adr/0001-recall-authority.md): recall never reorders or
drops hits because of their tier. Instead every hit gets a tier label and
:meth:`AuthorityTiers.context` renders the hits grouped by tier, highest first, with the
configured precedence rules, as text a prompt can include (``RecallResult
.authority_context``). Reflect uses that text as its evidence when
``recall_authority.apply_to_reflect`` is on.

Not to be confused with any cost or latency tiering of retrieval: a tier here is a
statement about how much a memory's *source* is to be believed.

Where a memory's tier comes from, first match wins:

1. retain stamps ``metadata["authority_tier"]`` (:data:`TIER_METADATA_KEY`), resolved
   from the ingest source (``tier_by_source``), the extraction profile
   (``authority_tier``), the bank (``tier_by_bank``, first pattern in file order) or
   ``default_tier``; at recall a stamp naming a configured tier is kept as is;
2. otherwise (memories stored before the section was enabled, proxy and external
   hits) the same rules are applied at recall time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

from astrocyte.config.ingest_schema import RecallAuthorityConfig
from astrocyte.errors import ConfigError, ValidationError
from astrocyte.identity.access import TENANT_SEPARATOR
from astrocyte.recall.budget import estimate_tokens
from astrocyte.spi import MetadataValue
from astrocyte.types import AuthorityContext, AuthorityEntry, AuthorityTierGroup, RecallHit

__all__ = ["TIER_METADATA_KEY", "AuthorityTiers"]

#: Metadata key retain stamps with a memory's tier; reserved while the section is on.
TIER_METADATA_KEY = "authority_tier"
#: Metadata key the ingest layer stamps with the configured source's name.
_INGEST_SOURCE_KEY = "ingest_source"
_PROXY_PREFIX = "proxy:"
# A char-based estimate (see budget.estimate_tokens): tokens * 4 characters always fit.
_CHARS_PER_TOKEN = 4


@dataclass(frozen=True)
class AuthorityTiers:
    """The ``recall_authority`` section, ready to label memories and render context.

    Build with :meth:`from_config`, which returns ``None`` when the section is off (no
    ``tiers``), so callers can skip the feature with one ``is None`` check.
    """

    config: RecallAuthorityConfig
    rules: str | None = None
    _rank: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def from_config(cls, config: RecallAuthorityConfig) -> AuthorityTiers | None:
        """The tiers of ``config``, or ``None`` when no tiers are configured.

        ``rules_path`` is read here, once (the config loader has already checked that
        the file exists); an unreadable file is a :class:`ConfigError`.
        """
        if not config.tiers:
            return None
        rules = config.rules_inline
        if config.rules_path is not None:
            try:
                rules = Path(config.rules_path).expanduser().read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(
                    "recall_authority.rules_path",
                    f"cannot read {config.rules_path}: {exc}",
                    fix="point it at a readable UTF-8 text file",
                ) from None
        rules = rules.strip() if rules else None
        rank = {name: i for i, name in enumerate(config.tiers, start=1)}
        return cls(config, rules or None, rank)

    # --- labelling ---------------------------------------------------------------------

    def for_bank(self, bank_id: str) -> str | None:
        """The tier of a bank from ``tier_by_bank`` (first matching pattern) or
        ``default_tier``. ``bank_id`` may be a storage id (``tenant/bank``): patterns
        match the bank part, as callers name it."""
        bank = bank_id.rpartition(TENANT_SEPARATOR)[2]
        for pattern, tier in self.config.tier_by_bank.items():
            if fnmatchcase(bank, pattern):
                return tier
        return self.config.default_tier

    def for_retain(
        self,
        bank_id: str,
        metadata: Mapping[str, MetadataValue],
        *,
        profile_tier: str | None,
        field_name: str = "metadata",
    ) -> str | None:
        """The tier to stamp on memories retained into ``bank_id``.

        Callers may not choose a tier themselves (that would let any writer claim to be
        canonical), so a caller-given ``authority_tier`` key is rejected.
        """
        if TIER_METADATA_KEY in metadata:
            raise ValidationError(
                f"{field_name}.{TIER_METADATA_KEY}",
                "is set by recall_authority, not by callers",
                fix="remove the key; tiers come from tier_by_source, the extraction "
                "profile's authority_tier or tier_by_bank",
            )
        return (
            self._source_tier(metadata.get(_INGEST_SOURCE_KEY))
            or profile_tier
            or self.for_bank(bank_id)
        )

    def of_hit(self, hit: RecallHit) -> str | None:
        """The tier of a recalled hit (see the module docstring for the order)."""
        metadata = hit.provenance.metadata
        stamped = metadata.get(TIER_METADATA_KEY)
        if isinstance(stamped, str) and stamped in self._rank:
            return stamped
        if hit.origin.startswith(_PROXY_PREFIX):
            tier = self._source_tier(hit.origin[len(_PROXY_PREFIX) :])
        else:
            tier = self._source_tier(metadata.get(_INGEST_SOURCE_KEY))
        return tier or self.for_bank(hit.provenance.bank_id)

    def _source_tier(self, source: MetadataValue) -> str | None:
        if isinstance(source, str):
            return self.config.tier_by_source.get(source)
        return None

    # --- rendering ---------------------------------------------------------------------

    def context(self, hits: Sequence[RecallHit], max_tokens: int | None) -> AuthorityContext:
        """``hits`` grouped by tier (highest first, fused order within a tier) with the
        rules, rendered as prompt text within a token budget.

        The budget is the smaller of ``max_tokens`` (the call's) and
        ``max_context_tokens`` (the section's); either may be unset. Hits are admitted
        in fused order — relevance picks what fits, authority only arranges it — and
        the first hit that does not fit ends the list, as in the recall budget. Rules
        that alone exceed the budget are cut; when not even the heading fits, the text
        is empty and every hit is counted in ``omitted``.
        """
        caps = [c for c in (max_tokens, self.config.max_context_tokens) if c is not None]
        budget_chars = min(caps) * _CHARS_PER_TOKEN if caps else None
        header = self._header()
        rules = self.rules
        if budget_chars is not None:
            room = budget_chars - len(header)
            if room < 0:
                return AuthorityContext(
                    tiers=[], rules=self.rules, text="", token_count=0, omitted=len(hits)
                )
            if rules is not None and len(_rules_block(rules)) > room:
                rules = _cut(rules, room - len(_rules_block("")))
        preamble = header + (_rules_block(rules) if rules else "")
        used = len(preamble)
        chosen: list[tuple[int, RecallHit, str | None]] = []
        opened: set[str | None] = set()
        for index, hit in enumerate(hits):
            tier = self.of_hit(hit)
            # Numbers are assigned after grouping: the largest possible one bounds the width.
            cost = len(_entry_line(len(hits), hit)) + 1
            if tier not in opened:
                cost += len(self._heading(tier)) + 1
            if budget_chars is not None and used + cost > budget_chars:
                break
            used += cost
            opened.add(tier)
            chosen.append((index, hit, tier))
        groups = self._group(chosen)
        text = preamble + "".join(
            self._heading(group.tier)
            + "\n"
            + "".join(f"{_entry_line(e.number, hits[e.hit_index])}\n" for e in group.entries)
            for group in groups
        )
        text = text.rstrip("\n")
        return AuthorityContext(
            tiers=groups,
            rules=self.rules,
            text=text,
            token_count=estimate_tokens(text) if text else 0,
            omitted=len(hits) - len(chosen),
        )

    def _group(
        self, chosen: Sequence[tuple[int, RecallHit, str | None]]
    ) -> list[AuthorityTierGroup]:
        untiered = len(self.config.tiers) + 1
        order = sorted(
            {tier for _, _, tier in chosen},
            key=lambda t: self._rank.get(t, untiered) if t is not None else untiered,
        )
        groups: list[AuthorityTierGroup] = []
        number = 0
        for tier in order:
            entries = []
            for index, hit, hit_tier in chosen:
                if hit_tier != tier:
                    continue
                number += 1
                entries.append(
                    AuthorityEntry(
                        number=number,
                        hit_index=index,
                        memory_id=hit.memory_id,
                        bank_id=hit.provenance.bank_id,
                        origin=hit.origin,
                        tier=tier,
                        text=hit.text,
                    )
                )
            rank = self._rank.get(tier, untiered) if tier is not None else untiered
            groups.append(AuthorityTierGroup(tier=tier, rank=rank, entries=entries))
        return groups

    def _header(self) -> str:
        order = " > ".join(self.config.tiers)
        return (
            "Memories grouped by authority tier, most authoritative first "
            f"({order}). Numbers [n] identify memories for citation.\n"
        )

    def _heading(self, tier: str | None) -> str:
        if tier is None:
            return "## Untiered"
        return f"## Tier {self._rank[tier]} of {len(self.config.tiers)}: {tier}"


def _rules_block(rules: str) -> str:
    return f"Precedence rules:\n{rules}\n\n"


def _cut(text: str, chars: int) -> str:
    """``text`` shortened to ``chars`` characters, marked as cut."""
    if chars <= 1:
        return ""
    return text[: chars - 1].rstrip() + "…"


def _entry_line(number: int, hit: RecallHit) -> str:
    when = hit.provenance.occurred_at
    where = f"bank {hit.provenance.bank_id}" if hit.origin == "local" else hit.origin
    stamp = f", {when.date().isoformat()}" if when else ""
    return f"[{number}] ({where}{stamp}) {hit.text}"
