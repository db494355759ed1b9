"""Parsing and checking the adapter's options.

The factory passes the YAML options as keyword arguments, and YAML with environment
substitution hands numbers over as strings, so numeric options accept decimal strings
too. Every problem is a :class:`~astrocyte.errors.ConfigError` naming the option.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from astrocyte.errors import ConfigError

DEFAULT_COLLECTION = "astrocyte_memories"
DEFAULT_TIMEOUT_S = 10.0
DEFAULT_BATCH_SIZE = 256

# Qdrant itself allows more, but a name that also is a safe path segment and URL part
# avoids quoting surprises in the REST API and in local mode's directory layout.
_COLLECTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,200}")

#: Qdrant's own upper bound on a dense vector's size.
MAX_DIMENSIONS = 65536

Mode = Literal["server", "memory", "disk"]


@dataclass(frozen=True, slots=True)
class QdrantOptions:
    """Checked options; ``api_key`` is kept out of ``repr`` so it cannot reach a log."""

    mode: Mode
    url: str | None
    location: str | None
    path: str | None
    collection: str
    dimensions: int | None
    timeout_s: float
    batch_size: int
    hnsw_m: int | None
    hnsw_ef_construct: int | None
    exact: bool

    def describe_target(self) -> str:
        """Where the store points, safe to show in messages (no credentials)."""
        if self.mode == "memory":
            return "local in-memory mode"
        if self.mode == "disk":
            return f"local mode at {self.path}"
        return redact_url(self.url or "")


def redact_url(url: str) -> str:
    """``url`` without any ``user:password@`` part."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = f"{host}:{port}" if port is not None else host
    return parts._replace(netloc=netloc).geturl()


def parse_options(
    *,
    url: object,
    api_key: object,
    location: object,
    path: object,
    collection: object,
    dimensions: object,
    timeout_s: object,
    batch_size: object,
    hnsw_m: object,
    hnsw_ef_construct: object,
    exact: object,
) -> tuple[QdrantOptions, str | None]:
    """Check every option; returns the options and the api key (kept separately)."""
    url_s = _optional_str(url, "url")
    location_s = _optional_str(location, "location")
    path_s = _optional_str(path, "path")
    given = [name for name, v in (("url", url_s), ("location", location_s), ("path", path_s)) if v]
    if len(given) != 1:
        raise ConfigError(
            "url" if not given else given[1],
            "exactly one of url, location or path must be set"
            + (f" (got {', '.join(given)})" if given else ""),
            fix="set url for a Qdrant server, location ':memory:' for the client's in-memory "
            "mode, or path for its on-disk local mode",
        )
    mode: Mode
    if url_s:
        mode = "server"
        _check_url(url_s)
    elif location_s:
        mode = "memory"
        if location_s != ":memory:":
            raise ConfigError(
                "location",
                "only ':memory:' is supported",
                fix="use url for a server or path for the on-disk local mode",
            )
    else:
        mode = "disk"
    key = _optional_str(api_key, "api_key")
    if key and mode != "server":
        raise ConfigError("api_key", "is only used with url (a Qdrant server)")

    name = _optional_str(collection, "collection") or DEFAULT_COLLECTION
    if not _COLLECTION_NAME.fullmatch(name):
        raise ConfigError(
            "collection",
            "must be 1-200 characters of letters, digits, '_' or '-'",
        )
    dims = _optional_int(dimensions, "dimensions", minimum=1)
    if dims is not None and dims > MAX_DIMENSIONS:
        raise ConfigError("dimensions", f"must be at most {MAX_DIMENSIONS}")
    timeout = _float(timeout_s, "timeout_s", DEFAULT_TIMEOUT_S)
    batch = _optional_int(batch_size, "batch_size", minimum=1)
    options = QdrantOptions(
        mode=mode,
        url=url_s,
        location=location_s,
        path=path_s,
        collection=name,
        dimensions=dims,
        timeout_s=timeout,
        batch_size=batch if batch is not None else DEFAULT_BATCH_SIZE,
        hnsw_m=_optional_int(hnsw_m, "hnsw_m", minimum=0),
        hnsw_ef_construct=_optional_int(hnsw_ef_construct, "hnsw_ef_construct", minimum=4),
        exact=_bool(exact, "exact"),
    )
    return options, key


def _check_url(url: str) -> None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError("url", f"not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(
            "url",
            f"{redact_url(url)!r} is not an http(s) URL with a host",
            fix="use e.g. http://127.0.0.1:6333",
        )
    if port == 0:
        raise ConfigError("url", "port 0 is not a valid server port")
    if parts.query or parts.fragment:
        raise ConfigError("url", "must not carry a query string or fragment")


def _optional_str(value: object, key: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigError(key, f"must be a string, got {type(value).__name__}")
    return value.strip() or None


def _optional_int(value: object, key: str, *, minimum: int) -> int | None:
    if value is None or value == "":
        return None
    number: int
    if isinstance(value, bool):
        raise ConfigError(key, "must be an integer, got a boolean")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        number = int(value.strip())
    else:
        raise ConfigError(key, f"must be an integer, got {value!r}")
    if number < minimum:
        raise ConfigError(key, f"must be at least {minimum}, got {number}")
    return number


def _float(value: object, key: str, default: float) -> float:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise ConfigError(key, "must be a number of seconds, got a boolean")
    try:
        number = float(value) if isinstance(value, (int, float, str)) else math.nan
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number <= 0:
        raise ConfigError(key, f"must be a positive number of seconds, got {value!r}")
    return number


def _bool(value: object, key: str) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.strip().lower() in ("true", "1", "yes")
    raise ConfigError(key, f"must be true or false, got {value!r}")
