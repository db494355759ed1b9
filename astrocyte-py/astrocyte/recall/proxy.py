"""Federated recall: hits from outside the local stores, fused like another strategy.

Two kinds of outside hits join a recall's RRF fusion as extra rankings:

* **proxy sources** (``sources.<name>.type: proxy``): HTTP search endpoints queried
  concurrently with the local strategies for the banks they are attached to
  (``target_bank_template``). Their hits are labelled ``origin="proxy:<name>"`` and get
  synthetic memory ids ``proxy:<name>:<id or rank>``: they are not stored locally, so
  nothing can be forgotten or re-read by that id.
* **external context** passed by the caller (``external_context=``): labelled
  ``origin="external"``, ids ``external:<n>``.

A proxy never fails a recall: a timeout, an HTTP error or a malformed answer degrades
to the local results and is reported in ``RecallResult.proxies``. The wire format is in
docs/federated-recall.md.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import quote, urlsplit

import httpx

from astrocyte import validation as v
from astrocyte.config.schema import AstrocyteConfig
from astrocyte.errors import ValidationError
from astrocyte.spi import MemoryRecord, MetadataValue
from astrocyte.types import ProxyReport

#: Largest proxy response read; a bigger one is an error (protects memory).
MAX_RESPONSE_BYTES = 2 * 1024 * 1024
#: Longest text kept from one outside hit.
MAX_HIT_CHARS = 20_000
_MAX_ID_CHARS = 200

# Addresses a proxy URL may not reach unless the source sets allow_private_network:
# link-local (where cloud metadata services live) and the metadata endpoints
# themselves. Loopback and RFC 1918 ranges stay allowed: self-hosted search services
# (and tests) live there, and blocking them would push people to turn the guard off.
_BLOCKED_NETWORKS = (
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fd00:ec2::254/128"),
)


ProxyStatus = Literal["ok", "timeout", "error", "blocked"]


class Blocked(Exception):
    """The proxy URL resolves to an address the network guard refuses."""


@dataclass(frozen=True, slots=True)
class OutsideHit:
    """A hit from a proxy source or the caller's external context, as a record."""

    origin: str
    record: MemoryRecord


@dataclass(frozen=True, slots=True)
class ProxySource:
    """A ``type: proxy`` source, as recall uses it."""

    source_id: str
    url: str
    headers: Mapping[str, str]
    timeout: float
    target: str
    allow_private_network: bool = False
    _pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # `{...}` placeholders of a bank template ("user-{principal}") stand for any
        # bank-id text, so the proxy serves every bank the template can produce.
        parts = re.split(r"\{[^{}]*\}", self.target)
        pattern = "[^/]+".join(re.escape(p) for p in parts)
        object.__setattr__(self, "_pattern", re.compile(f"^{pattern}$"))

    @property
    def origin(self) -> str:
        """The label its hits carry."""
        return f"proxy:{self.source_id}"

    def applies_to(self, storage_bank_id: str) -> bool:
        """Whether a recall of this bank (as the stores name it) queries the proxy.

        Matched against the storage id, so a proxy written for ``support`` does not
        serve tenant banks (``<tenant>/support``) by accident.
        """
        return self._pattern.match(storage_bank_id) is not None

    def request_url(self, query: str) -> str:
        """The URL to GET: ``{query}`` replaced by the URL-encoded query, else ``q=``."""
        encoded = quote(query, safe="")
        if "{query}" in self.url:
            return self.url.replace("{query}", encoded)
        return f"{self.url}{'&' if '?' in self.url else '?'}q={encoded}"


def proxies_from_config(config: AstrocyteConfig) -> list[ProxySource]:
    """The enabled proxy sources that name a target bank, in config order.

    A proxy without ``target_bank_template`` is never queried: which recalls it should
    join must be said explicitly, not default to every bank of the deployment.
    """
    out: list[ProxySource] = []
    for name, source in config.sources.items():
        if source.type != "proxy" or not source.enabled:
            continue
        if source.url is None or source.target_bank_template is None:
            continue
        out.append(
            ProxySource(
                source_id=name,
                url=source.url,
                headers=dict(source.headers),
                timeout=source.timeout_seconds,
                target=source.target_bank_template,
                allow_private_network=source.allow_private_network,
            )
        )
    return out


def _blocked_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_unspecified or any(ip in net for net in _BLOCKED_NETWORKS)


async def check_destination(url: str, *, allow_private_network: bool) -> None:
    """Raise :class:`Blocked` when ``url``'s host is, or resolves to, a refused address.

    Every address the name resolves to is checked, so a name with one public and one
    metadata address is refused. (The HTTP client resolves again when it connects; a
    DNS answer that changes in between — rebinding — is not caught here.)
    """
    if allow_private_network:
        return
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        raise Blocked(f"no host in {url!r}")
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = await asyncio.get_running_loop().getaddrinfo(host, port)
        addresses = [str(info[4][0]) for info in infos]
    for address in addresses:
        if _blocked_address(address):
            raise Blocked(f"{host} resolves to {address}, a link-local/metadata address")


async def query_proxy(
    client: httpx.AsyncClient,
    source: ProxySource,
    storage_bank_id: str,
    query: str,
    *,
    limit: int,
    now: datetime,
) -> tuple[ProxyReport, list[OutsideHit]]:
    """Ask one proxy for ``query``; never raises (the outcome is in the report).

    The whole exchange — name resolution, connection, response — is bounded by the
    source's timeout, so a hanging proxy costs a recall at most that long.
    """
    started = time.perf_counter()
    hits: list[OutsideHit] = []
    status: ProxyStatus = "ok"
    error: str | None = None
    try:
        hits = await asyncio.wait_for(
            _fetch(client, source, storage_bank_id, query, limit, now), source.timeout
        )
    except Blocked as exc:
        status, error = "blocked", str(exc)
    except _HttpStatus as exc:
        status, error = "error", str(exc)
    except (TimeoutError, httpx.TimeoutException):
        status, error = "timeout", f"no answer within {source.timeout:g}s"
    except Exception as exc:
        # Header values (API keys) never appear in httpx or JSON error messages; the
        # URL may, and holds only the query.
        status, error = "error", f"{type(exc).__name__}: {exc}"[:500]
    report = ProxyReport(
        source_id=source.source_id,
        bank_id=storage_bank_id,
        status=status,
        elapsed_ms=round((time.perf_counter() - started) * 1000, 3),
        hits=len(hits),
        error=error,
    )
    return report, hits


async def _fetch(
    client: httpx.AsyncClient,
    source: ProxySource,
    storage_bank_id: str,
    query: str,
    limit: int,
    now: datetime,
) -> list[OutsideHit]:
    url = source.request_url(query)
    await check_destination(url, allow_private_network=source.allow_private_network)
    # Redirects are not followed (the client is built so): a redirect could lead past
    # the network guard.
    async with client.stream(
        "GET", url, headers=dict(source.headers), timeout=source.timeout
    ) as response:
        if response.status_code >= 400 or response.status_code < 200:
            raise _HttpStatus(f"HTTP {response.status_code}")
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > MAX_RESPONSE_BYTES:
                raise _HttpStatus(f"response larger than {MAX_RESPONSE_BYTES} bytes")
    return parse_proxy_response(
        json.loads(bytes(body)), source, storage_bank_id, limit=limit, now=now
    )


class _HttpStatus(Exception):
    pass


def parse_proxy_response(
    payload: object, source: ProxySource, storage_bank_id: str, *, limit: int, now: datetime
) -> list[OutsideHit]:
    """Hits of a proxy answer: ``{"hits": [{"text", "score"?, "id"?, "metadata"?,
    "occurred_at"?}]}`` (a bare list of hits is accepted too), best-first.

    Hits are ordered by ``score`` when every hit has one, else kept in the order
    given; fusion only uses the order. Entries without text are skipped; a payload of
    another shape is an error.
    """
    items = payload.get("hits") if isinstance(payload, Mapping) else payload
    if not isinstance(items, list):
        raise ValueError('expected {"hits": [...]} or a list of hits')
    entries = [i for i in items if isinstance(i, Mapping) and _text(i.get("text"))]
    scores = [_number(e.get("score")) for e in entries]
    if entries and all(s is not None for s in scores):
        order = sorted(range(len(entries)), key=lambda i: -(scores[i] or 0.0))
        entries = [entries[i] for i in order]
    out: list[OutsideHit] = []
    seen: set[str] = set()
    for rank, entry in enumerate(entries[:limit], start=1):
        raw_id = entry.get("id")
        local = str(raw_id)[:_MAX_ID_CHARS] if isinstance(raw_id, str | int) else str(rank)
        memory_id = f"{source.origin}:{local}"
        if memory_id in seen:
            continue
        seen.add(memory_id)
        record = MemoryRecord(
            id=memory_id,
            bank_id=storage_bank_id,
            text=_text(entry.get("text"))[:MAX_HIT_CHARS],
            source_id=source.origin,
            chunk_index=0,
            content_type="text",
            created_at=now,
            occurred_at=_when(entry.get("occurred_at")),
            metadata=_metadata(entry.get("metadata")),
        )
        out.append(OutsideHit(source.origin, record))
    return out


def external_context_hits(value: object, *, max_items: int, now: datetime) -> list[OutsideHit]:
    """Validate the caller's ``external_context``: a list of ``{text, source?, score?}``
    mappings (or plain strings), best-first unless every item has a score.

    The hits belong to no bank (``bank_id`` is empty) and their ``source_id`` is the
    item's ``source``, or ``external``.
    """
    if value is None:
        return []
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise ValidationError(
            "external_context", "must be a list of {text, source?, score?} mappings"
        )
    if len(value) > max_items:
        raise ValidationError(
            "external_context", f"has {len(value)} items, over the limit of {max_items}"
        )
    items: list[tuple[str, str, float | None]] = []
    for i, item in enumerate(value):
        field_name = f"external_context[{i}]"
        if isinstance(item, str):
            item = {"text": item}
        if not isinstance(item, Mapping):
            raise ValidationError(field_name, "must be a mapping with a 'text' key")
        unknown = set(item) - {"text", "source", "score"}
        if unknown:
            raise ValidationError(field_name, f"unknown keys {sorted(unknown)}")
        text = item.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ValidationError(f"{field_name}.text", "must be a non-empty string")
        source = v.optional_str(item.get("source"), f"{field_name}.source") or "external"
        score = item.get("score")
        if score is not None and _number(score) is None:
            raise ValidationError(f"{field_name}.score", "must be a finite number")
        items.append((text[:MAX_HIT_CHARS], source, _number(score)))
    if items and all(score is not None for _, _, score in items):
        items.sort(key=lambda it: -(it[2] or 0.0))
    return [
        OutsideHit(
            "external",
            MemoryRecord(
                id=f"external:{n}",
                bank_id="",
                text=text,
                source_id=source,
                chunk_index=0,
                content_type="text",
                created_at=now,
            ),
        )
        for n, (text, source, _) in enumerate(items, start=1)
    ]


def _text(value: object) -> str:
    return value if isinstance(value, str) and value.strip() else ""


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _when(value: object) -> datetime | None:
    try:
        return v.timestamp(value, "occurred_at")
    except ValidationError:
        return None


def _metadata(value: object) -> dict[str, MetadataValue]:
    """The scalar entries of a proxy hit's metadata; anything else is dropped, not
    failed on — a proxy is not ours to validate strictly."""
    if not isinstance(value, Mapping):
        return {}
    out: dict[str, MetadataValue] = {}
    for key, item in list(value.items())[:64]:
        if not isinstance(key, str) or not key:
            continue
        if item is None or isinstance(item, bool | int | str):
            out[key] = item[:1000] if isinstance(item, str) else item
        elif isinstance(item, float) and math.isfinite(item):
            out[key] = item
    return out


def utc_now() -> datetime:
    """The default clock of recall (relative dates, outside hits' created_at)."""
    return datetime.now(UTC)
