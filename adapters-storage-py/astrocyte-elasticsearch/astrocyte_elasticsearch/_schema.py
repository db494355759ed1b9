"""Index layout: names, the analyzer, mappings and the composable index templates.

Two indices per ``index_prefix``, each a concrete versioned index behind an alias:

* ``<prefix>-memories`` -> ``<prefix>-memories-v1``: every bank's memories, filtered
  by the ``bank_id`` keyword;
* ``<prefix>-banks`` -> ``<prefix>-banks-v1``: the bank registry (id, created_at).

A composable index template per index (pattern ``<prefix>-memories-v*``) carries the
settings, mappings and the alias, so the concrete index is created from it. Templates
and indices carry ``_meta.astrocyte_schema``; a store refuses an index of a newer schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from astrocyte.stores.text import STOPWORDS

#: Bumped when the mapping changes incompatibly; it is part of the concrete index name.
SCHEMA_VERSION = 1

AnalysisMode = Literal["server", "client"]

ANALYZER = "astrocyte_text"

#: Words are maximal runs of Unicode letters and digits, exactly like the core's
#: ``astrocyte.stores.text`` (Java's ``\W`` is ASCII-only, so spell the classes out).
_WORD_SPLIT = r"[^\p{L}\p{N}]+"

#: The core's light plural folding (``astrocyte.stores.text.fold``) as three ordered
#: rewrites: "-ies" -> "-y" (5+ letters), "-sses" -> "-ss", then drop a final "s" of a
#: 4+ letter word unless it ends in "ss", "us" or "is".
_PLURAL_RULES = (
    ("astrocyte_plural_ies", r"^(.{2,})ies$", "$1y"),
    ("astrocyte_plural_sses", r"^(.*ss)es$", "$1"),
    ("astrocyte_plural_s", r"^(.{2,}[^sui])s$", "$1"),
)


def server_analysis() -> dict[str, Any]:
    """Analysis settings of the server-side analyzer (needs the analysis-common module,
    which every full Elasticsearch / OpenSearch distribution ships)."""
    filters: dict[str, Any] = {
        # Bounds a token so a pathological "word" can never exceed Lucene's term limit.
        "astrocyte_truncate": {"type": "truncate", "length": 1000},
        "astrocyte_stop": {"type": "stop", "stopwords": sorted(STOPWORDS), "ignore_case": False},
    }
    for name, pattern, replacement in _PLURAL_RULES:
        filters[name] = {"type": "pattern_replace", "pattern": pattern, "replacement": replacement}
    return {
        "tokenizer": {"astrocyte_words": {"type": "pattern", "pattern": _WORD_SPLIT}},
        "filter": filters,
        "analyzer": {
            ANALYZER: {
                "type": "custom",
                "tokenizer": "astrocyte_words",
                "filter": [
                    "lowercase",
                    "asciifolding",
                    "astrocyte_truncate",
                    "astrocyte_stop",
                    *(name for name, _, _ in _PLURAL_RULES),
                ],
            }
        },
    }


def analyze_probe() -> dict[str, Any]:
    """An ``_analyze`` request using the server analyzer's building blocks inline: it
    fails on a node without analysis-common (e.g. Elasticsearch's integ-test zip)."""
    analysis = server_analysis()
    filters = analysis["filter"]
    return {
        "tokenizer": analysis["tokenizer"]["astrocyte_words"],
        "filter": [
            "lowercase",
            "asciifolding",
            filters["astrocyte_truncate"],
            *(filters[name] for name, _, _ in _PLURAL_RULES),
        ],
        "text": "Cafés",
    }


@dataclass(frozen=True)
class Layout:
    """Index, alias and template names of one ``index_prefix``."""

    prefix: str

    @property
    def memories(self) -> str:
        """Alias every memory request goes through."""
        return f"{self.prefix}-memories"

    @property
    def memories_index(self) -> str:
        """Concrete index behind :attr:`memories`."""
        return f"{self.prefix}-memories-v{SCHEMA_VERSION}"

    @property
    def banks(self) -> str:
        """Alias of the bank registry."""
        return f"{self.prefix}-banks"

    @property
    def banks_index(self) -> str:
        """Concrete index behind :attr:`banks`."""
        return f"{self.prefix}-banks-v{SCHEMA_VERSION}"


def _meta(mode: AnalysisMode | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"astrocyte_schema": SCHEMA_VERSION, "managed_by": "astrocyte"}
    if mode is not None:
        meta["analysis"] = mode
    return meta


def _unindexed_keyword() -> dict[str, Any]:
    return {"type": "keyword", "index": False, "doc_values": False}


def memories_template(layout: Layout, mode: AnalysisMode, refresh_interval: str) -> dict[str, Any]:
    """Body of the memories index template for ``mode``."""
    settings: dict[str, Any] = {
        # One shard: BM25 statistics are then exact for the whole index, and a
        # memory store per node rarely outgrows one shard (see the README).
        "number_of_shards": 1,
        "number_of_replicas": 0,
        "auto_expand_replicas": "0-1",
        "refresh_interval": refresh_interval,
    }
    if mode == "server":
        settings["analysis"] = server_analysis()
        text: dict[str, Any] = {"type": "text", "analyzer": ANALYZER}
    else:
        # The adapter sends the core's own tokens, space-separated.
        text = {"type": "text", "analyzer": "whitespace"}
    return {
        "index_patterns": [f"{layout.prefix}-memories-v*"],
        "priority": 500,
        "version": SCHEMA_VERSION,
        "_meta": _meta(mode),
        "template": {
            "settings": settings,
            "aliases": {layout.memories: {}},
            "mappings": {
                "dynamic": "strict",
                "_meta": _meta(mode),
                "properties": {
                    "bank_id": {"type": "keyword"},
                    "memory_id": _unindexed_keyword(),
                    "doc_key": {"type": "keyword"},
                    "text": text,
                    "tags": {"type": "keyword"},
                    "meta": {"type": "keyword"},
                    "occurred_us": {"type": "long"},
                    "content_hash": {"type": "keyword"},
                    "stored_us": {"type": "long"},
                    "payload": _unindexed_keyword(),
                },
            },
        },
    }


def banks_template(layout: Layout, refresh_interval: str) -> dict[str, Any]:
    """Body of the bank registry's index template."""
    return {
        "index_patterns": [f"{layout.prefix}-banks-v*"],
        "priority": 500,
        "version": SCHEMA_VERSION,
        "_meta": _meta(None),
        "template": {
            "settings": {
                "number_of_shards": 1,
                "number_of_replicas": 0,
                "auto_expand_replicas": "0-1",
                "refresh_interval": refresh_interval,
            },
            "aliases": {layout.banks: {}},
            "mappings": {
                "dynamic": "strict",
                "_meta": _meta(None),
                "properties": {
                    "bank_id": {"type": "keyword"},
                    "created_at": {"type": "keyword", "index": False},
                },
            },
        },
    }
