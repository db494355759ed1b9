"""atomic-agents-stack memory backend on Astrocyte (``pip install "astrocyte[atomic-agents]"``).

:class:`AstrocyteMemoryBackend` implements atomic-agents' ``MemoryBackend`` protocol
(``atomic_agents.memory.backend``): pass it as ``AtomicAgent(name,
memory_backend=AstrocyteMemoryBackend(brain, "agents:advisor"))`` and the agent's atomic
notes — the captures it writes after a call, the pinned and recent notes and the index it
loads into its prompt — live in one Astrocyte bank.

**Mapping.** One backend = one bank. Every write of a note retains one *version* of it:
the text recall searches is the note's description and body, its tags are the note's
tags, and its metadata holds ``atomic_note`` (the note's file name, ``<type>_<topic>.md``
as atomic-agents derives it), ``atomic_version`` (a time-ordered id) and the full note as
JSON (split in parts of at most 4,000 characters). The newest version of a name is the
live note; the older ones are its version history (``list_versions``, ``read_version``,
``restore_version``, ``redact_version``). ``search`` is :meth:`Astrocyte.recall`
(semantic + keyword fusion), so ``supports_semantic_search`` is true.

Writes follow the protocol's four cases (merge into an existing note; fresh write;
same-content rewrite returns the existing note; different content under an existing
name raises ``SchemaValidationError``) and its ``expected_content_sha256`` check (the
SHA-256 of type, name, description and body — specific to this backend, like
Postgres's). ``WritePolicy`` is enforced on the folder the filesystem backend would
write, ``<agent_root>/memory``: it must be under a ``write_paths`` entry and not under a
``read_only_paths`` entry; without an ``agent_root`` only an empty ``write_paths`` is
refused.

**Identity.** ``context`` is passed to every brain call: reads need ``read`` on the bank,
writes ``write``, and ``redact_version`` also ``forget`` (the redacted version is
forgotten and retained again). A denied call raises :class:`~astrocyte.AccessDenied`
out of the protocol method — the agent reports it like any backend failure.

**Limits.** The protocol is synchronous; calls run on the shared background loop of
:func:`~astrocyte.integrations.common.run_sync`, so use this ``Astrocyte`` only through
sync adapters in that process. Listing reads every version in the bank (fine for an
agent's notes, not for millions). There is no INDEX.md, so ``list_orphans`` is always
empty and ``render_index_summary`` is generated. Dream's staged bulk rewrite
(``create_staging`` / ``apply_staging`` / ``discard_staging``) is not supported and
raises ``NotImplementedError``; canonical export is not supported
(``supports_canonical_export`` is false). Writes are not transactional: two processes
writing one name at once may both succeed (the newest version wins).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

try:
    from atomic_agents._schema import derive_filename  # type: ignore[import-untyped]  # package ships no py.typed
    from atomic_agents.exceptions import (  # type: ignore[import-untyped]  # package ships no py.typed
        MemoryPreconditionFailed,
        SchemaValidationError,
        VersionNotFound,
        WritePathViolation,
    )
    from atomic_agents.memory.backend import (  # type: ignore[import-untyped]  # package ships no py.typed
        MemoryStats,
        Note,
        NoteRef,
        StagedMemory,
        VersionRef,
        WritePolicy,
    )
    from atomic_agents.types import Capture  # type: ignore[import-untyped]  # package ships no py.typed
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "astrocyte.integrations.atomic_agents needs atomic-agents-stack: "
        'pip install "astrocyte[atomic-agents]"'
    ) from exc

from astrocyte.brain import Astrocyte
from astrocyte.errors import BankNotFound
from astrocyte.identity.context import AstrocyteContext
from astrocyte.integrations.common import find_records, run_sync
from astrocyte.spi import MetadataValue, RecordFilter

__all__ = ["NOTE_FIELD", "VERSION_FIELD", "AstrocyteMemoryBackend"]

#: Metadata field holding a note's file name.
NOTE_FIELD = "atomic_note"
#: Metadata field holding the version id (sortable: UTC time, then a random suffix).
VERSION_FIELD = "atomic_version"
_PARTS_FIELD = "atomic_json_parts"
_PART_PREFIX = "atomic_json_"
_PART_CHARS = 4000
_SECTIONS = {
    "user": "User",
    "feedback": "Feedback",
    "project": "Project",
    "decision": "Decision",
    "reference": "Reference",
}


@dataclass(frozen=True)
class _Version:
    version: str
    filename: str
    note: Note
    memory_ids: tuple[str, ...]


def _note_to_json(note: Note) -> str:
    data = asdict(note)
    for key in ("captured", "last_seen"):
        value = data[key]
        data[key] = value.isoformat() if value else None
    return json.dumps(data, ensure_ascii=False, sort_keys=True, default=str)


def _note_from_json(text: str) -> Note | None:
    try:
        data = json.loads(text)
        for key in ("captured", "last_seen"):
            data[key] = date.fromisoformat(data[key]) if data.get(key) else None
        return Note(**data)
    except (ValueError, TypeError):
        return None


def _content_hash(note: Note) -> str:
    text = "\x00".join((note.type, note.name, note.description, note.body.strip()))
    return hashlib.sha256(text.encode()).hexdigest()


def _ref(filename: str, note: Note) -> NoteRef:
    return NoteRef(
        name=filename,
        type=note.type,
        description=note.description,
        captured=note.captured,
        last_seen=note.last_seen,
        pinned=note.pinned,
        confidence=note.confidence,
        archived=note.archived,
        superseded_by=note.superseded_by,
    )


def _live(note: Note, include_archived: bool, include_superseded: bool) -> bool:
    return (include_archived or not note.archived) and (
        include_superseded or not note.superseded_by
    )


class AstrocyteMemoryBackend:
    """atomic-agents ``MemoryBackend`` on one Astrocyte bank (see the module docstring).

    ``AstrocyteMemoryBackend(brain, bank_id, context=ctx, agent_root=path)``."""

    def __init__(
        self,
        brain: Astrocyte,
        bank_id: str,
        *,
        context: AstrocyteContext | None = None,
        agent_root: Path | None = None,
    ) -> None:
        self.brain = brain
        self.bank_id = bank_id
        self.context = context
        self.agent_root = agent_root.resolve() if agent_root is not None else None

    # ----- storage helpers --------------------------------------------------------------

    async def _versions(self, where: RecordFilter | None = None) -> dict[str, list[_Version]]:
        """Every version in the bank by file name, newest first (authorised as a recall)."""
        records = await find_records(self.brain, self.bank_id, where, context=self.context)
        grouped: dict[tuple[str, str], list[Any]] = {}
        for record in records:
            name, version = record.metadata.get(NOTE_FIELD), record.metadata.get(VERSION_FIELD)
            if isinstance(name, str) and isinstance(version, str):
                grouped.setdefault((name, version), []).append(record)
        out: dict[str, list[_Version]] = {}
        for (name, version), chunks in grouped.items():
            note = self._decode(chunks[0].metadata)
            if note is not None:
                ids_ = tuple(r.id for r in chunks)
                out.setdefault(name, []).append(_Version(version, name, note, ids_))
        for versions in out.values():
            versions.sort(key=lambda v: v.version, reverse=True)
        return out

    @staticmethod
    def _decode(metadata: Mapping[str, MetadataValue]) -> Note | None:
        count = metadata.get(_PARTS_FIELD)
        if not isinstance(count, int) or isinstance(count, bool):
            return None
        return _note_from_json(
            "".join(str(metadata.get(f"{_PART_PREFIX}{i}", "")) for i in range(count))
        )

    async def _store(self, filename: str, note: Note, version: str | None = None) -> None:
        encoded = _note_to_json(note)
        parts = [encoded[i : i + _PART_CHARS] for i in range(0, len(encoded), _PART_CHARS)]
        meta: dict[str, MetadataValue] = {
            NOTE_FIELD: filename,
            VERSION_FIELD: version or _new_version(),
            _PARTS_FIELD: len(parts),
        }
        meta.update({f"{_PART_PREFIX}{i}": part for i, part in enumerate(parts)})
        text = f"{note.description}\n\n{note.body}".strip() or filename
        await self.brain.retain(
            text, self.bank_id, metadata=meta, tags=note.tags or None, context=self.context
        )

    async def _latest(self, name: str) -> _Version | None:
        versions = (await self._versions(RecordFilter(metadata={NOTE_FIELD: name}))).get(name)
        return versions[0] if versions else None

    def _enforce(self, policy: WritePolicy) -> None:
        """WritePolicy on the path the filesystem backend would write: the notes live in
        ``<agent_root>/memory`` (the agent's own write paths name that folder)."""
        if not policy.write_paths:
            raise WritePathViolation("write blocked: write_paths is empty")
        if self.agent_root is None:
            return
        target = self.agent_root / "memory"
        for ro in policy.read_only_paths:
            if target.is_relative_to(ro.resolve()):
                raise WritePathViolation(f"write blocked: {target} is under read-only path {ro}")
        if not any(target.is_relative_to(w.resolve()) for w in policy.write_paths):
            raise WritePathViolation(
                f"write blocked: {target} is not under any write path {policy.write_paths}"
            )

    # ----- read operations --------------------------------------------------------------

    def _refs(
        self, include_archived: bool = False, include_superseded: bool = False
    ) -> list[NoteRef]:
        versions = run_sync(self._versions())
        return sorted(
            (
                _ref(name, vs[0].note)
                for name, vs in versions.items()
                if _live(vs[0].note, include_archived, include_superseded)
            ),
            key=lambda r: r.name,
        )

    def list_notes(
        self, include_archived: bool = False, include_superseded: bool = False
    ) -> list[NoteRef]:
        """The live notes (archived / superseded ones only when asked), by name."""
        return self._refs(include_archived, include_superseded)

    def read_note(self, name: str) -> Note | None:
        """The live version of ``name`` (a file name), or ``None``."""
        latest = run_sync(self._latest(name))
        return latest.note if latest is not None else None

    def list_pinned(self) -> list[NoteRef]:
        """Pinned notes, archived or superseded ones included (protocol rule)."""
        return [r for r in self._refs(True, True) if r.pinned]

    def list_recent(
        self,
        n: int,
        exclude_pinned: bool = True,
        include_archived: bool = False,
        include_superseded: bool = False,
    ) -> list[NoteRef]:
        """Up to ``n`` notes, most recently seen first."""
        refs = [
            r
            for r in self._refs(include_archived, include_superseded)
            if not (exclude_pinned and r.pinned)
        ]
        refs.sort(key=lambda r: r.last_seen or date.min, reverse=True)
        return refs[: max(n, 0)]

    def list_stale(self, threshold_days: int, exclude_pinned: bool = True) -> list[NoteRef]:
        """Live notes last seen more than ``threshold_days`` ago."""
        cutoff = date.today() - timedelta(days=threshold_days)
        return [
            r
            for r in self._refs()
            if r.last_seen is not None
            and r.last_seen < cutoff
            and not (exclude_pinned and r.pinned)
        ]

    def list_orphans(self) -> list[NoteRef]:
        """Always empty: there is no INDEX.md to be missing from."""
        return []

    def list_by_type(self, type_name: str) -> list[NoteRef]:
        """Live notes of ``type_name``."""
        return [r for r in self._refs() if r.type == type_name]

    def render_index_summary(self) -> str:
        """An INDEX.md-like summary of the live notes, grouped by type."""
        refs = self._refs()
        if not refs:
            return "# Memory Index\n\n(no notes)\n"
        lines = ["# Memory Index", ""]
        order = [*_SECTIONS, *sorted({r.type for r in refs} - set(_SECTIONS))]
        for type_name in order:
            group = [r for r in refs if r.type == type_name]
            if group:
                lines.append(f"## {_SECTIONS.get(type_name, type_name.title())}")
                lines += [f"- [{r.name}]({r.name}) — {r.description}" for r in group]
                lines.append("")
        return "\n".join(lines)

    # ----- write operations -------------------------------------------------------------

    def write_note(
        self,
        capture: Capture,
        policy: WritePolicy,
        expected_content_sha256: str | None = None,
    ) -> NoteRef:
        """Write ``capture`` (the protocol's four cases; see the module docstring)."""
        self._enforce(policy)
        return run_sync(self._write(capture, expected_content_sha256))

    async def _write(self, capture: Capture, expected: str | None) -> NoteRef:
        today = date.today()
        if capture.merge_into:
            target = await self._latest(capture.merge_into)
            if target is None:
                raise SchemaValidationError(
                    f"merge_into target {capture.merge_into!r} doesn't exist"
                )
            self._check_hash(target.note, expected, capture.merge_into)
            sources = list(target.note.sources)
            sources += [s for s in capture.sources if s not in sources]
            merged = replace(target.note, sources=sources, last_seen=today)
            await self._store(target.filename, merged)
            return _ref(target.filename, merged)
        filename = derive_filename(capture.type, capture.name)
        existing = await self._latest(filename)
        fresh = Note(
            type=capture.type,
            name=capture.name,
            description=capture.description,
            confidence=capture.confidence,
            sources=list(capture.sources),
            body=capture.body,
            supersedes=capture.supersedes,
            merge_into=None,
            pinned=capture.pinned,
            expires_at=capture.expires_at,
            tags=list(capture.tags),
            captured=today,
            last_seen=today,
            archived=False,
            superseded_by=None,
            schema_version=1,
            extra_frontmatter={},
        )
        if existing is None:
            if expected is not None:
                raise MemoryPreconditionFailed(
                    f"expected_content_sha256 was given but {filename!r} doesn't exist",
                    actual_sha256=None,
                )
            await self._store(filename, fresh)
            return _ref(filename, fresh)
        self._check_hash(existing.note, expected, filename)
        if _content_hash(existing.note) != _content_hash(fresh):
            raise SchemaValidationError(
                f"atomic note {filename!r} already exists; use merge_into to update"
            )
        seen = replace(existing.note, last_seen=today)
        await self._store(filename, seen)
        return _ref(filename, seen)

    @staticmethod
    def _check_hash(note: Note, expected: str | None, name: str) -> None:
        actual = _content_hash(note)
        if expected is not None and expected != actual:
            raise MemoryPreconditionFailed(
                f"content of {name!r} has changed; re-read and retry", actual_sha256=actual
            )

    # ----- versioning -------------------------------------------------------------------

    def _history(self, name: str) -> list[_Version]:
        versions = run_sync(self._versions(RecordFilter(metadata={NOTE_FIELD: name})))
        return versions.get(name, [])[1:]  # the newest is the live note, not history

    def list_versions(self, name: str) -> list[VersionRef]:
        """Earlier versions of ``name``, newest first."""
        return [VersionRef(f"{name}/{v.version}") for v in self._history(name)]

    def _find(self, ref: VersionRef) -> _Version:
        name, _, version = ref.backend_id.partition("/")
        for v in self._history(name):
            if v.version == version:
                return v
        raise VersionNotFound(f"version {ref} of {name!r} not found")

    def read_version(self, version_ref: VersionRef) -> Note:
        """The note as it was at ``version_ref``."""
        return self._find(version_ref).note

    def restore_version(self, name: str, version_ref: VersionRef, policy: WritePolicy) -> NoteRef:
        """Make ``version_ref``'s content the live note (as a new version, so the current
        one stays in the history)."""
        self._enforce(policy)
        old = self._find(version_ref)
        if old.filename != name:
            raise VersionNotFound(f"version {version_ref} is not a version of {name!r}")
        restored = replace(old.note, last_seen=date.today())
        run_sync(self._store(name, restored))
        return _ref(name, restored)

    def redact_version(self, version_ref: VersionRef, replacement: str = "[REDACTED]") -> None:
        """Replace a past version's body (and searchable text) by ``replacement``; its
        other fields stay for the audit trail. Needs ``forget`` as well as ``write``."""
        old = self._find(version_ref)

        async def redact() -> None:
            await self.brain.forget(
                self.bank_id, memory_ids=list(old.memory_ids), context=self.context
            )
            await self._store(old.filename, replace(old.note, body=replacement), old.version)

        run_sync(redact())

    def resolve_version_token(self, name: str, token: str) -> VersionRef:
        """The version of ``name`` whose id (the display token) is ``token``."""
        ref = VersionRef(f"{name}/{token}")
        self._find(ref)
        return ref

    # ----- staging (dream) --------------------------------------------------------------

    def create_staging(self) -> StagedMemory:
        """Not supported: raises ``NotImplementedError``."""
        raise NotImplementedError("AstrocyteMemoryBackend does not support staged rewrites")

    def apply_staging(self, staging: StagedMemory, policy: WritePolicy) -> None:
        """Not supported: raises ``NotImplementedError``."""
        raise NotImplementedError("AstrocyteMemoryBackend does not support staged rewrites")

    def discard_staging(self, staging: StagedMemory) -> None:
        """Not supported: raises ``NotImplementedError``."""
        raise NotImplementedError("AstrocyteMemoryBackend does not support staged rewrites")

    # ----- stats ------------------------------------------------------------------------

    def stats(self) -> MemoryStats:
        """Note counts by type, bytes of live bodies and of history, most-revised notes."""
        versions = run_sync(self._versions())
        live = [vs[0].note for vs in versions.values()]
        by_type: dict[str, int] = {}
        for note in live:
            by_type[note.type] = by_type.get(note.type, 0) + 1
        churn = sorted(((n, len(vs) - 1) for n, vs in versions.items()), key=lambda x: -x[1])
        return MemoryStats(
            total_notes=len(live),
            by_type=by_type,
            live_bytes=sum(len(n.body.encode()) for n in live),
            version_history_bytes=sum(
                len(v.note.body.encode()) for vs in versions.values() for v in vs[1:]
            ),
            most_churned=[c for c in churn if c[1] > 0][:20],
        )

    def version_count(self, name: str) -> int:
        """Number of earlier versions of ``name``."""
        return len(self._history(name))

    def last_mutation_at(self, name: str) -> datetime | None:
        """When ``name`` was last written (from its newest version id)."""
        versions = run_sync(self._versions(RecordFilter(metadata={NOTE_FIELD: name})))
        if not versions.get(name):
            return None
        return datetime.strptime(versions[name][0].version[:22], "%Y%m%dT%H%M%S.%f").replace(
            tzinfo=UTC
        )

    # ----- capabilities and search ------------------------------------------------------

    @property
    def supports_semantic_search(self) -> bool:
        """True: :meth:`search` is Astrocyte's recall."""
        return True

    @property
    def supports_canonical_export(self) -> bool:
        """False: canonical export is not implemented."""
        return False

    def search(self, query: str, limit: int = 10) -> list[NoteRef]:
        """Live notes whose text recall ranks for ``query``, best first."""
        return run_sync(self._search(query, limit))

    async def _search(self, query: str, limit: int) -> list[NoteRef]:
        if limit <= 0:
            return []
        try:
            result = await self.brain.recall(
                query, self.bank_id, max_results=max(limit * 4, 10), context=self.context
            )
        except BankNotFound:
            return []
        versions = await self._versions()
        out: list[NoteRef] = []
        for hit in result.hits:
            name = hit.provenance.metadata.get(NOTE_FIELD)
            if not isinstance(name, str) or name not in versions:
                continue
            if any(r.name == name for r in out):
                continue
            note = versions[name][0].note
            if _live(note, False, False):
                out.append(_ref(name, note))
            if len(out) >= limit:
                break
        return out

    def close(self) -> None:
        """Nothing to release: the ``Astrocyte`` belongs to the caller."""


def _new_version() -> str:
    # UTC time to the microsecond, then a random suffix: sorts in write order.
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S.%f}Z_{uuid.uuid4().hex[:8]}"
