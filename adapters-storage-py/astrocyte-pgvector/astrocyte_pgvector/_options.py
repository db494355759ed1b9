"""Constructor options: parsed and checked without any I/O.

The factory passes YAML values as keyword arguments, so every option also accepts the
plain strings a config file or environment substitution may produce ("30", "true").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from astrocyte.errors import ConfigError

_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

#: pgvector indexes at most 2,000 dimensions for the ``vector`` type.
MAX_INDEXED_DIMENSIONS = 2000


@dataclass(frozen=True, slots=True)
class Options:
    """Validated settings of one :class:`~astrocyte_pgvector.PgVectorStore`."""

    dsn: str
    schema: str
    dimensions: int
    allow_other_dimensions: bool
    min_pool_size: int
    max_pool_size: int
    timeout_s: float
    connect_timeout_s: float
    hnsw_m: int
    hnsw_ef_construction: int
    ef_search: int
    text_search_config: str
    keyword_candidates: int = 0

    @property
    def safe_dsn(self) -> str:
        """The DSN with its password masked, for messages and logs."""
        return mask_dsn(self.dsn)


def mask_dsn(dsn: str) -> str:
    """``dsn`` with any password replaced by ``***``."""
    try:
        parts = urlsplit(dsn)
    except ValueError:
        return "<unparsable dsn>"
    if parts.password is None:
        return dsn
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username or ''}:***@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _int(key: str, value: object, *, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool):
        raise ConfigError(key, "must be an integer, not a boolean")
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise ConfigError(key, f"must be an integer, got {value!r}") from None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise ConfigError(key, f"must be an integer, got {type(value).__name__}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ConfigError(key, f"must be {bound}, got {value}")
    return value


def _float(key: str, value: object) -> float:
    if isinstance(value, bool):
        raise ConfigError(key, "must be a number of seconds, not a boolean")
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise ConfigError(key, f"must be a number of seconds, got {value!r}") from None
    if not isinstance(value, int | float) or not value > 0 or value == float("inf"):
        raise ConfigError(key, f"must be a positive number of seconds, got {value!r}")
    return float(value)


def _bool(key: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "yes", "1", "on"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"false", "no", "0", "off"}:
        return False
    raise ConfigError(key, f"must be true or false, got {value!r}")


def _dsn(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(
            "dsn",
            "is required",
            fix="set storage.*.dsn, e.g. postgresql://user:password@host:5432/database",
        )
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise ConfigError("dsn", f"is not a valid URL ({exc})") from None
    if parts.scheme not in {"postgresql", "postgres"}:
        raise ConfigError(
            "dsn",
            f"must start with postgresql:// (got scheme {parts.scheme!r})",
            fix="use postgresql://user:password@host:5432/database",
        )
    return value


def parse_options(
    *,
    dsn: object,
    schema: object,
    dimensions: object,
    allow_other_dimensions: object,
    min_pool_size: object,
    max_pool_size: object,
    timeout_s: object,
    connect_timeout_s: object,
    hnsw_m: object,
    hnsw_ef_construction: object,
    ef_search: object,
    text_search_config: object,
    keyword_candidates: object = 0,
) -> Options:
    """Check every option; raises :class:`ConfigError` naming the first bad one."""
    if not isinstance(schema, str) or not _SCHEMA_NAME.match(schema):
        raise ConfigError(
            "schema",
            f"must be a lower-case SQL identifier (letters, digits, _), got {schema!r}",
        )
    if not isinstance(text_search_config, str) or not _SCHEMA_NAME.match(text_search_config):
        raise ConfigError(
            "text_search_config",
            f"must be a PostgreSQL text search configuration name, got {text_search_config!r}",
            fix="use e.g. 'english' or 'simple'",
        )
    min_size = _int("min_pool_size", min_pool_size, minimum=0, maximum=1000)
    max_size = _int("max_pool_size", max_pool_size, minimum=1, maximum=1000)
    if min_size > max_size:
        raise ConfigError("min_pool_size", f"must not exceed max_pool_size ({max_size})")
    m = _int("hnsw_m", hnsw_m, minimum=2, maximum=100)
    ef_construction = _int("hnsw_ef_construction", hnsw_ef_construction, minimum=4, maximum=1000)
    if ef_construction < 2 * m:
        raise ConfigError("hnsw_ef_construction", f"must be at least 2 * hnsw_m ({2 * m})")
    return Options(
        dsn=_dsn(dsn),
        schema=schema,
        dimensions=_int("dimensions", dimensions, minimum=1, maximum=MAX_INDEXED_DIMENSIONS),
        allow_other_dimensions=_bool("allow_other_dimensions", allow_other_dimensions),
        min_pool_size=min_size,
        max_pool_size=max_size,
        timeout_s=_float("timeout_s", timeout_s),
        connect_timeout_s=_float("connect_timeout_s", connect_timeout_s),
        hnsw_m=m,
        hnsw_ef_construction=ef_construction,
        ef_search=_int("ef_search", ef_search, minimum=1, maximum=1000),
        text_search_config=text_search_config,
        keyword_candidates=_int(
            "keyword_candidates", keyword_candidates, minimum=0, maximum=1_000_000
        ),
    )
