"""What the retrieval-quality benchmarks share: stores, embedder, ablation ladder, report.

A run (:class:`QualityRun`) drives the public API exactly as a user would:
``retain_many`` to ingest, ``recall`` to query, nothing else. No LLM is involved: the
scores measure whether the evidence a question needs comes back in the top ``k`` hits.

How a run is put together, and why:

* **One fresh store per sample / instance** (:meth:`QualityRun.session`). The embedded
  store keeps BM25 statistics and its "common word" cut-off per *file*, so sharing one
  file between samples would let one conversation's vocabulary change another's keyword
  ranking. A fresh file per sample is what a user with that one conversation would see,
  and closing it frees its vectors, so a 500-instance LongMemEval run holds one
  haystack at a time. With the embedded (default) or ``memory`` backend the files live
  in a temporary directory (``storage.path`` is redirected there: a benchmark never
  writes into a real memory file) and are deleted when the sample is done; with
  external adapter stores every bank is forgotten instead.
* **Ingest once, recall per rung.** Every rung of the ablation ladder differs only in
  recall settings, so all rungs get their own :class:`~astrocyte.Astrocyte` over the
  *same* stores: one ingest serves the whole ladder and no rung can differ from another
  through ingestion noise. Ingest time is therefore reported once, per run.
* **One embedder, memoised** (:class:`CachingEmbedder`). The model loads once per
  run and document vectors are cached by text, which pays off on LongMemEval where
  instances share most haystack sessions. Query embeddings are *not* cached, so each
  rung's latency includes embedding its query, as in production.
* **No LLM.** ``llm`` is removed from the run's config: recall never uses it.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import tempfile
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import numpy as np

from astrocyte._version import __version__
from astrocyte.bench.metrics import Summary
from astrocyte.brain import Astrocyte
from astrocyte.config import AstrocyteConfig, load_config
from astrocyte.config.loader import ConfigSource
from astrocyte.config.schema import StrategyName
from astrocyte.errors import ValidationError
from astrocyte.factory import build_embedder, build_stores
from astrocyte.recall.rerank import PassthroughReranker, Reranker, create_reranker
from astrocyte.spi import Embedder, Vector
from astrocyte.types import RecallHit, StrategyTrace

__all__ = [
    "ABLATION_LADDER",
    "DEFAULT_KS",
    "RETAIN_BATCH",
    "CachingEmbedder",
    "DataFile",
    "Progress",
    "QualityRun",
    "Rung",
    "RungState",
    "Session",
    "check_ks",
    "check_limit",
    "environment",
    "parse_iso_datetime",
    "read_json_list",
    "render_report",
    "safe_bank_id",
    "summary_json",
]

DEFAULT_KS: tuple[int, ...] = (5, 10, 20)
"""The ``k`` values scored when the caller gives none."""

RETAIN_BATCH = 256
"""Items per ``retain_many`` call while ingesting."""

Progress = Callable[[str], None]
"""Receives one human-readable progress line at a time (e.g. printed to stderr)."""

_PASSTHROUGH = ("none", "passthrough")
_FAR_FUTURE = "9999-12-31T00:00:00Z"
_BANK_UNSAFE = re.compile(r"[^A-Za-z0-9._:@-]")


# ---------------------------------------------------------------------------- inputs


def check_ks(ks: Sequence[int]) -> list[int]:
    """The distinct ``k`` values, ascending; each a positive integer up to 1000."""
    if isinstance(ks, str | bytes) or not isinstance(ks, Sequence) or not ks:
        raise ValidationError("k", "must be a non-empty list of positive integers", fix="e.g. 5,10")
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 1000:
            raise ValidationError("k", f"{k!r} is not an integer in 1..1000", fix="e.g. 5,10,20")
    return sorted(set(ks))


def check_limit(limit: int | None) -> int | None:
    """``None`` (everything) or a positive integer."""
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValidationError("limit", f"must be a positive integer, got {limit!r}")
    return limit


@dataclass(frozen=True, slots=True)
class DataFile:
    """A loaded data set: its items, where it came from and the hash of its bytes."""

    items: list[Any]
    path: str
    sha256: str
    size: int


def read_json_list(path: str | os.PathLike[str], what: str) -> DataFile:
    """Load a data file holding a JSON list; ``what`` names the items in errors.

    The hash is of the exact bytes read, so a report pins the data it was computed on.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise ValidationError(
            "data",
            f"{file} does not exist",
            fix="download the public data set and pass the path of its JSON file",
        )
    raw = file.read_bytes()
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValidationError("data", f"{file} is not valid JSON: {exc}") from None
    if not isinstance(data, list):
        raise ValidationError(
            "data", f"{file} must hold a JSON list of {what}, got {type(data).__name__}"
        )
    return DataFile(data, str(file.resolve()), hashlib.sha256(raw).hexdigest(), len(raw))


def parse_iso_datetime(text: str) -> datetime | None:
    """An ISO-8601 date or date-time, naive ones taken as UTC (the core's rule);
    ``None`` when ``text`` is not ISO-8601."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def safe_bank_id(prefix: str, raw_id: object) -> str:
    """A valid bank id ``{prefix}-{raw_id}``, unsupported characters replaced by ``_``."""
    safe = _BANK_UNSAFE.sub("_", str(raw_id))
    return f"{prefix}-{safe}"[:128]


def environment() -> dict[str, Any]:
    """Versions and machine facts a result depends on."""
    return {
        "versions": {
            "astrocyte": __version__,
            "python": platform.python_version(),
            "numpy": np.__version__,
            "onnxruntime": _dist_version("onnxruntime"),
        },
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
    }


def _dist_version(name: str) -> str | None:
    # The installed distribution's version, without importing the (slow) module.
    try:
        return importlib_metadata.version(name)
    except importlib_metadata.PackageNotFoundError:
        return None


# -------------------------------------------------------------------------- embedder


class CachingEmbedder:
    """An :class:`~astrocyte.spi.Embedder` that memoises document vectors by text.

    Identical texts get identical vectors from a deterministic model, so a text seen
    before in the run is not embedded again. Queries (``kind="query"``) always go to
    the wrapped embedder, so recall latency stays honest. At most ``max_entries``
    vectors are kept (least recently used dropped first; 200k × 384 floats ≈ 300 MB).
    :meth:`close` drops the cache but does not close the wrapped embedder, which
    belongs to whoever built it.
    """

    def __init__(self, inner: Embedder, *, max_entries: int = 200_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._inner = inner
        self._max_entries = max_entries
        self._cache: OrderedDict[str, Vector] = OrderedDict()
        self.hits = 0
        """Distinct texts per call served from the cache."""
        self.misses = 0
        """Distinct texts per call sent to the wrapped embedder."""

    @property
    def inner(self) -> Embedder:
        """The wrapped embedder."""
        return self._inner

    @property
    def model_id(self) -> str:
        """The wrapped embedder's model id."""
        return self._inner.model_id

    @property
    def dimensions(self) -> int:
        """The wrapped embedder's vector width."""
        return self._inner.dimensions

    async def embed(
        self, texts: Sequence[str], *, kind: Literal["document", "query"] = "document"
    ) -> Vector:
        """Vectors of ``texts`` in order: cached ones reused, the rest embedded in one
        call to the wrapped embedder."""
        if kind != "document" or isinstance(texts, str):
            # A bare str goes through so the wrapped embedder reports the misuse.
            return await self._inner.embed(texts, kind=kind)
        items = list(texts)
        found: dict[str, Vector] = {}
        missing: list[str] = []
        for text in dict.fromkeys(items):
            vector = self._cache.get(text) if isinstance(text, str) else None
            if vector is None:
                missing.append(text)
            else:
                self._cache.move_to_end(text)
                found[text] = vector
        self.hits += len(found)
        self.misses += len(missing)
        if missing:
            fresh = await self._inner.embed(missing, kind="document")
            for text, row in zip(missing, fresh, strict=True):
                # A copy, so a cached row does not pin the whole batch matrix.
                found[text] = np.array(row, dtype=np.float32)
                self._remember(text, found[text])
        if not items:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        return np.stack([found[text] for text in items]).astype(np.float32, copy=False)

    def _remember(self, text: str, vector: Vector) -> None:
        self._cache[text] = vector
        while len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)

    async def close(self) -> None:
        """Drop the cache (the wrapped embedder stays open)."""
        self._cache.clear()


# ---------------------------------------------------------------------------- ladder


@dataclass(frozen=True, slots=True)
class Rung:
    """One recall configuration measured by a run: strategies, and whether the
    configured reranker is applied."""

    name: str
    strategies: tuple[StrategyName, ...]
    rerank: bool = False


_ALL: tuple[StrategyName, ...] = ("semantic", "keyword", "graph", "temporal")

ABLATION_LADDER: tuple[Rung, ...] = (
    Rung("keyword", ("keyword",)),
    Rung("semantic", ("semantic",)),
    Rung("rrf(semantic+keyword)", ("semantic", "keyword")),
    Rung("+graph", ("semantic", "keyword", "graph")),
    Rung("+temporal", _ALL),
    Rung("+rerank", _ALL, rerank=True),
)
"""Each rung adds one component to the previous one; rungs before ``+rerank`` keep the
fused order (passthrough reranker) whatever the config says."""


@dataclass(slots=True)
class RungState:
    """A rung during a run: its config, reranker, timings, traces and scored rows."""

    name: str
    strategies: tuple[str, ...]
    reranker_name: str
    config: AstrocyteConfig
    reranker: Reranker | None
    status: Literal["ran", "passthrough"] = "ran"
    note: str | None = None
    latencies_ms: list[float] = field(default_factory=list)
    traces: dict[str, dict[str, Any]] = field(default_factory=dict)
    rows: list[tuple[str, dict[str, float]]] = field(default_factory=list)
    details: list[dict[str, Any]] = field(default_factory=list)

    @property
    def runs(self) -> bool:
        """Whether this rung is queried (a passthrough ``+rerank`` rung is not)."""
        return self.status == "ran"

    def count_trace(self, trace: StrategyTrace) -> None:
        """Tally how a strategy ran for one query."""
        entry = self.traces.setdefault(
            trace.name, {"ran": 0, "skipped": 0, "errors": 0, "reasons": {}}
        )
        reason = trace.error or trace.skipped
        if trace.error is not None:
            entry["errors"] += 1
        elif trace.skipped is not None:
            entry["skipped"] += 1
        else:
            entry["ran"] += 1
        if reason is not None:
            reasons: dict[str, int] = entry["reasons"]
            reasons[reason] = reasons.get(reason, 0) + 1

    def to_json(self, metrics: Mapping[str, Any] | None) -> dict[str, Any]:
        """The rung's part of the report, with ``metrics`` computed by the runner."""
        latencies = sorted(self.latencies_ms)
        out: dict[str, Any] = {
            "name": self.name,
            "strategies": list(self.strategies),
            "reranker": self.reranker_name,
            "status": self.status,
        }
        if self.note:
            out["note"] = self.note
        if self.runs:
            out["recall"] = {
                "queries": len(latencies),
                "seconds": round(sum(latencies) / 1000, 3),
                "latency_ms": _latency_summary(latencies),
            }
            out["strategy_traces"] = self.traces
        out["metrics"] = dict(metrics) if metrics is not None else None
        if self.details:
            out["questions"] = self.details
        return out


def _latency_summary(ordered: Sequence[float]) -> dict[str, float] | None:
    if not ordered:
        return None

    def rank(p: float) -> float:
        # Nearest-rank percentile: always a latency that was actually observed.
        index = max(0, min(len(ordered) - 1, int(np.ceil(p * len(ordered))) - 1))
        return round(ordered[index], 3)

    return {
        "mean": round(sum(ordered) / len(ordered), 3),
        "p50": rank(0.50),
        "p95": rank(0.95),
        "max": round(ordered[-1], 3),
    }


# ------------------------------------------------------------------------------ run


class Session:
    """A fresh store with one :class:`~astrocyte.Astrocyte` per rung over it.

    Made by :meth:`QualityRun.session`; ingest a sample with :meth:`ingest`, then query
    it per rung with :meth:`recall`.
    """

    def __init__(self, run: QualityRun, ingester: Astrocyte, brains: dict[str, Astrocyte]) -> None:
        self._run = run
        self._ingester = ingester
        self._brains = brains
        self.banks: list[str] = []

    async def ingest(self, bank_id: str, items: Sequence[Mapping[str, Any]]) -> int:
        """Retain ``items`` into the (new) bank in batches; returns the memory count.

        An empty sample still gets its (empty) bank, so its questions score 0 instead
        of failing with ``BankNotFound``.
        """
        documents = self._ingester.stores.documents
        if await documents.bank_exists(bank_id) and await documents.count(bank_id):
            raise ValidationError(
                "storage",
                f"bank {bank_id!r} already holds memories; a benchmark needs fresh banks",
                fix="point the benchmark config at an empty store",
            )
        self.banks.append(bank_id)
        started = time.perf_counter()
        memories = 0
        if not items:
            await self._ingester.create_bank(bank_id)
        step = min(RETAIN_BATCH, self._ingester.config.limits.max_batch_items)
        for start in range(0, len(items), step):
            batch = await self._ingester.retain_many(items[start : start + step], bank_id)
            memories += batch.memory_count
        self._run.ingest_seconds += time.perf_counter() - started
        self._run.ingest_items += len(items)
        self._run.ingest_memories += memories
        # One untimed recall with every strategy loads what a store loads lazily on
        # first search (the bank's vector matrix, SQLite pages), so that cost is not
        # charged to whichever rung happens to query first.
        await self._ingester.recall("warm-up", bank_id, max_results=1)
        return memories

    async def recall(
        self,
        rung: RungState,
        query: str,
        bank_id: str,
        max_results: int,
        *,
        now: datetime | None = None,
    ) -> list[RecallHit]:
        """``recall`` through the rung's instance, timing it and tallying its traces.

        ``now`` is when the question is asked in the dataset's world: relative dates in
        it ("last week") mean that week, not the week the benchmark happens to run.
        """
        brain = self._brains[rung.name]
        started = time.perf_counter()
        result = await brain.recall(query, bank_id, max_results=max_results, now=now)
        rung.latencies_ms.append((time.perf_counter() - started) * 1000)
        for trace in result.strategies:
            rung.count_trace(trace)
        return result.hits


class QualityRun:
    """One benchmark run: config, embedder, rungs, fresh stores per sample, report.

    Use as ``async with QualityRun(...) as run:``, then ``async with run.session() as
    s:`` per sample. ``config`` is anything :func:`astrocyte.load_config` takes
    (``None``: zero config). With ``ablation`` the run measures
    :data:`ABLATION_LADDER`; without, one rung named ``config`` with the config's own
    recall settings. ``embedder`` is used as given and not closed; without one, the
    configured embedder is built once and closed at the end.
    """

    def __init__(
        self,
        config: ConfigSource = None,
        *,
        ablation: bool = False,
        embedder: Embedder | None = None,
        progress: Progress | None = None,
    ) -> None:
        loaded = load_config(config)
        self.config_source = str(config) if isinstance(config, str | os.PathLike) else None
        self.notes: list[str] = []
        if loaded.llm is not None:
            self.notes.append("llm removed from the config: retrieval scoring uses no LLM")
        storage = loaded.storage
        adapters = (storage.document_store, storage.vector_store, storage.graph_store)
        # Temporary local files are deleted per sample; anything else must be cleaned
        # through the API (forget), since the store outlives the run.
        self._ephemeral = not any(adapters)
        self._redirect = storage.backend == "embedded"
        if self._redirect:
            self.notes.append(
                "storage.path redirected to a fresh temporary file per sample "
                "(a benchmark never writes into a real memory file)"
            )
        if not self._ephemeral:
            self.notes.append("external stores: each bank is forgotten after scoring")
        if ablation:
            self.notes.append(
                "rungs differ only in recall settings, so one ingest per sample serves "
                "every rung (ingest time is per run, not per rung)"
            )
        self.notes.append(
            "memory ids are random and exact score ties (BM25, RRF) are broken by id, "
            "so tied hits may swap places between runs"
        )
        self.config = loaded.model_copy(update={"llm": None})
        self.ablation = ablation
        self.progress = progress
        self._given_embedder = embedder
        self._owned_embedder: Embedder | None = None
        self.embedder: CachingEmbedder | None = None
        self._workdir: Path | None = None
        self._sessions = 0
        self.rungs: list[RungState] = []
        self.ingest_seconds = 0.0
        self.ingest_items = 0
        self.ingest_memories = 0
        self._started = time.perf_counter()

    async def __aenter__(self) -> QualityRun:
        self._started = time.perf_counter()
        self._workdir = Path(tempfile.mkdtemp(prefix="astrocyte-bench-"))
        try:
            inner = self._given_embedder
            if inner is None:
                inner = self._owned_embedder = build_embedder(self.config)
            self.embedder = CachingEmbedder(inner)
            self.rungs = self._plan_rungs()
        except BaseException:
            await self._cleanup()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._cleanup()

    async def _cleanup(self) -> None:
        if self.embedder is not None:
            await self.embedder.close()
        if self._owned_embedder is not None:
            await self._owned_embedder.close()
            self._owned_embedder = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def _plan_rungs(self) -> list[RungState]:
        base = self.config
        provider = base.recall.rerank.provider
        configured = provider not in _PASSTHROUGH
        # Built once per run: a real reranker may load a model.
        reranker = create_reranker(provider) if configured else PassthroughReranker()
        if not self.ablation:
            return [
                RungState(
                    name="config",
                    strategies=tuple(base.recall.strategies),
                    reranker_name=provider,
                    config=base,
                    reranker=reranker,
                )
            ]
        rungs: list[RungState] = []
        for rung in ABLATION_LADDER:
            name = provider if rung.rerank else "none"
            recall = base.recall.model_copy(
                update={
                    "strategies": list(rung.strategies),
                    "rerank": base.recall.rerank.model_copy(update={"provider": name}),
                }
            )
            state = RungState(
                name=rung.name,
                strategies=rung.strategies,
                reranker_name=name,
                config=base.model_copy(update={"recall": recall}),
                reranker=reranker if rung.rerank else PassthroughReranker(),
            )
            if rung.rerank and not configured:
                # Measuring it would only re-run the previous rung: say so instead.
                state.status = "passthrough"
                state.reranker = None
                state.note = (
                    f"no reranker configured (recall.rerank.provider: {provider}); the "
                    f"passthrough reranker keeps the fused order, so this rung is "
                    f"identical by construction to {ABLATION_LADDER[-2].name!r} and was "
                    "not run"
                )
            rungs.append(state)
        return rungs

    @property
    def active_rungs(self) -> list[RungState]:
        """The rungs that are queried."""
        return [r for r in self.rungs if r.runs]

    def say(self, line: str) -> None:
        """Send a progress line, if anyone listens."""
        if self.progress is not None:
            self.progress(line)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[Session]:
        """A fresh, empty store for one sample, closed (and deleted) afterwards."""
        if self._workdir is None or self.embedder is None:
            raise RuntimeError("use QualityRun as an async context manager first")
        self._sessions += 1
        config = self.config
        folder = self._workdir / f"s{self._sessions}"
        if self._redirect:
            storage = config.storage.model_copy(update={"path": str(folder / "bench.db")})
            config = config.model_copy(update={"storage": storage})
        stores = build_stores(config)
        # Retain depends only on the chunking and limits sections, shared by all rungs.
        recall_all = config.recall.model_copy(update={"strategies": list(_ALL)})
        ingester = Astrocyte(
            config.model_copy(update={"recall": recall_all}),
            stores=stores,
            embedder=self.embedder,
            reranker=PassthroughReranker(),
        )
        brains = {
            rung.name: Astrocyte(
                rung.config, stores=stores, embedder=self.embedder, reranker=rung.reranker
            )
            for rung in self.active_rungs
        }
        session = Session(self, ingester, brains)
        try:
            yield session
        finally:
            try:
                if not self._ephemeral:
                    for bank in session.banks:
                        await ingester.forget(bank, before=_FAR_FUTURE)
            finally:
                for brain in (ingester, *brains.values()):
                    await brain.close()
                await stores.close()
                shutil.rmtree(folder, ignore_errors=True)

    def report(
        self,
        *,
        benchmark: str,
        dataset: Mapping[str, Any],
        ks: Sequence[int],
        limit: int | None,
        parsing: Mapping[str, Any],
        group_label: str,
        display_metrics: Sequence[str],
        metrics: Callable[[RungState], dict[str, Any]],
    ) -> dict[str, Any]:
        """The JSON report; ``metrics`` turns a rung's scored rows into its metrics."""
        embedder = self.embedder
        dump = self.config.model_dump(mode="json")
        if self._redirect:
            dump["storage"]["path"] = "<temporary file per sample>"
        seconds = self.ingest_seconds
        return {
            "benchmark": benchmark,
            "dataset": dict(dataset),
            "ks": list(ks),
            "max_results": max(ks),
            "ablation": self.ablation,
            "limit": limit,
            "config_path": self.config_source,
            "config": _redact(dump),
            "notes": list(self.notes),
            "embedder": {
                "model_id": embedder.model_id if embedder else None,
                "dimensions": embedder.dimensions if embedder else None,
                "cache": {
                    "hits": embedder.hits if embedder else 0,
                    "misses": embedder.misses if embedder else 0,
                },
            },
            "environment": environment(),
            "ingest": {
                "stores": self._sessions,
                "items": self.ingest_items,
                "memories": self.ingest_memories,
                "seconds": round(seconds, 3),
                "items_per_second": round(self.ingest_items / seconds, 1) if seconds else None,
            },
            "parsing": dict(parsing),
            "group_label": group_label,
            "display_metrics": list(display_metrics),
            "rungs": [r.to_json(metrics(r) if r.runs else None) for r in self.rungs],
            "elapsed_seconds": round(time.perf_counter() - self._started, 3),
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }


_SECRET = re.compile(r"key|secret|token|password|authorization", re.IGNORECASE)


def _redact(value: Any, key: str = "") -> Any:
    # Provider options may carry credentials; a report is meant to be shared.
    if isinstance(value, dict):
        return {k: _redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v, key) for v in value]
    if _SECRET.search(key) and isinstance(value, str) and not key.endswith("_env"):
        return "<redacted>"
    return value


def summary_json(summary: Summary | None) -> dict[str, Any] | None:
    """A summary's JSON form, or ``None``."""
    return summary.to_json() if summary is not None else None


# --------------------------------------------------------------------------- render


def render_report(report: Mapping[str, Any]) -> str:
    """A plain-text view of a report: header, the ladder on the overall scores, then
    per-group tables for each rung that ran."""
    lines: list[str] = []
    dataset = report.get("dataset", {})
    lines.append(f"{report.get('benchmark', '?')} retrieval benchmark (no LLM)")
    lines.append(f"  data      {dataset.get('path')}  sha256 {str(dataset.get('sha256'))[:16]}...")
    counted = ", ".join(
        f"{key} {dataset[key]}"
        for key in ("samples", "instances", "questions", "evaluated")
        if key in dataset
    )
    lines.append(f"  counts    {counted}")
    embedder = report.get("embedder", {})
    versions = report.get("environment", {}).get("versions", {})
    lines.append(
        f"  embedder  {embedder.get('model_id')}  astrocyte {versions.get('astrocyte')}"
        f"  python {versions.get('python')}"
    )
    ingest = report.get("ingest", {})
    lines.append(
        f"  ingest    {ingest.get('items')} items -> {ingest.get('memories')} memories in "
        f"{ingest.get('seconds')} s ({ingest.get('items_per_second')} items/s)"
    )
    lines.append(f"  k         {', '.join(str(k) for k in report.get('ks', []))}")
    skipped = {k: v for k, v in report.get("parsing", {}).items() if v}
    if skipped:
        lines.append("  parsing   " + ", ".join(f"{k} {v}" for k, v in skipped.items()))
    for note in report.get("notes", []):
        lines.append(f"  note      {note}")
    columns = list(report.get("display_metrics", []))
    headers = [_short(c) for c in columns]
    legend = sorted({f"{_short(c).partition('@')[0]} = {c.partition('@')[0]}" for c in columns})
    legend = [entry for entry in legend if entry.split(" = ")[0] != entry.split(" = ")[1]]
    if legend:
        lines.append("  columns   " + ", ".join(legend))
    rungs = list(report.get("rungs", []))

    lines.append("")
    lines.append("overall")
    table: list[list[str]] = [["rung", "n", *headers, "p50 ms", "p95 ms"]]
    for rung in rungs:
        metrics = rung.get("metrics")
        if metrics is None:
            table.append([rung["name"], "-", *(["="] * len(columns)), "-", "-"])
            continue
        overall = metrics.get("overall") or {}
        latency = (rung.get("recall") or {}).get("latency_ms") or {}
        table.append(
            [
                rung["name"],
                str(overall.get("count", 0)),
                *_cells(overall, columns),
                _num(latency.get("p50"), 1),
                _num(latency.get("p95"), 1),
            ]
        )
    lines.extend(_table(table))
    for rung in rungs:
        if rung.get("note"):
            lines.append(f"  {rung['name']}: {rung['note']}")
        for name, trace in (rung.get("strategy_traces") or {}).items():
            if trace.get("ran", 0) == 0 and (trace.get("skipped") or trace.get("errors")):
                reasons = "; ".join(trace.get("reasons", {}))
                lines.append(f"  {rung['name']}: {name} never ran ({reasons})")

    label = report.get("group_label", "group")
    for rung in rungs:
        metrics = rung.get("metrics")
        if metrics is None:
            continue
        lines.append("")
        lines.append(f"{rung['name']} by {label}")
        table = [[label, "n", *headers]]
        for group, summary in (metrics.get("groups") or {}).items():
            table.append([group, str(summary.get("count", 0)), *_cells(summary, columns)])
        if metrics.get("overall"):
            table.append(["overall", str(metrics["overall"].get("count", 0))])
            table[-1].extend(_cells(metrics["overall"], columns))
        for group, summary in (metrics.get("separate") or {}).items():
            if summary:
                row = [f"{group} (separate)", str(summary.get("count", 0))]
                table.append(row + _cells(summary, columns))
        lines.extend(_table(table))
    return "\n".join(lines) + "\n"


_ABBREVIATIONS = (
    ("session_recall_any", "s.any"),
    ("session_recall_all", "s.all"),
    ("session_recall", "s.rec"),
    ("session_ndcg", "s.ndcg"),
    ("session_mrr", "s.mrr"),
    ("turn_recall", "t.rec"),
)


def _short(metric: str) -> str:
    # Full names make a 10-column table ~200 characters wide; the legend maps back.
    for long, short in _ABBREVIATIONS:
        if metric.startswith(long):
            return short + metric[len(long) :]
    return metric


def _cells(summary: Mapping[str, Any], columns: Sequence[str]) -> list[str]:
    values = summary.get("metrics", {})
    return [_num(values.get(c), 3) for c in columns]


def _num(value: object, digits: int) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:.{digits}f}"
    return "-"


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(len(rows[0]))]
    out = []
    for n, row in enumerate(rows):
        cells = [
            cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)
        ]
        out.append("  " + "  ".join(cells).rstrip())
        if n == 0:
            out.append("  " + "  ".join("-" * w for w in widths))
    return out
