"""Validation of the store's options (plain YAML scalars) into one typed object."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote, urlsplit

from astrocyte.errors import ConfigError

Flavor = Literal["auto", "elasticsearch", "opensearch"]
Analysis = Literal["auto", "server", "client"]
Refresh = Literal["wait_for", "true", "false"]

# Index names must be lowercase and may not contain these (plus a leading -, _ or +).
_PREFIX = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
_REFRESH_INTERVAL = re.compile(r"^(-1|\d+(ms|s|m))$")


@dataclass(frozen=True)
class Options:
    """Validated options; ``url`` carries no credentials (they moved to username/password)."""

    url: str
    username: str | None
    password: str | None
    api_key: str | None
    index_prefix: str
    refresh: Refresh
    refresh_interval: str
    timeout_s: float
    flavor: Flavor
    analysis: Analysis
    verify_certs: bool
    ca_certs: str | None


def _as_bool(key: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "yes", "1", "on"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"false", "no", "0", "off"}:
        return False
    raise ConfigError(key, f"expected true or false, got {value!r}")


def _as_choice(key: str, value: object, choices: tuple[str, ...]) -> str:
    text = str(value).strip().lower() if isinstance(value, str | bool) else None
    if text not in choices:
        raise ConfigError(key, f"must be one of {', '.join(choices)}, got {value!r}")
    return text


def parse_options(
    *,
    url: object,
    username: object,
    password: object,
    api_key: object,
    index_prefix: object,
    refresh: object,
    refresh_interval: object,
    timeout_s: object,
    flavor: object,
    analysis: object,
    verify_certs: object,
    ca_certs: object,
) -> Options:
    """Check every option and normalise it; raises :class:`ConfigError` naming the key."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(
            "url", "is required", fix="set it to the node's address, e.g. http://127.0.0.1:9200"
        )
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise ConfigError("url", "is not a valid URL") from None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ConfigError("url", "must be an http:// or https:// URL with a host")
    # Credentials in the URL are accepted for convenience but never kept in it, so the
    # URL can be logged and shown in errors.
    if parts.username is not None and username is None:
        username = unquote(parts.username)
    if parts.password is not None and password is None:
        password = unquote(parts.password)
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    netloc = host if port is None else f"{host}:{port}"
    clean_url = f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"

    for key, value in (("username", username), ("password", password), ("api_key", api_key)):
        if value is not None and not isinstance(value, str):
            raise ConfigError(key, "must be a string")
    if (username is None) != (password is None):
        missing = "password" if password is None else "username"
        raise ConfigError(missing, "username and password must be given together")
    if api_key is not None and username is not None:
        raise ConfigError("api_key", "give either api_key or username/password, not both")

    if not isinstance(index_prefix, str) or not _PREFIX.match(index_prefix):
        raise ConfigError(
            "index_prefix",
            f"{index_prefix!r} is not a valid index name prefix",
            fix="use lowercase letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    if isinstance(refresh, bool):
        refresh = "true" if refresh else "false"
    refresh_text = _as_choice("refresh", refresh, ("wait_for", "true", "false"))
    if not isinstance(refresh_interval, str) or not _REFRESH_INTERVAL.match(refresh_interval):
        raise ConfigError("refresh_interval", "must be a duration like 1s, 200ms or -1")
    try:
        timeout = float(timeout_s)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError("timeout_s", f"must be a number of seconds, got {timeout_s!r}") from None
    if isinstance(timeout_s, bool) or not timeout > 0:
        raise ConfigError("timeout_s", "must be a positive number of seconds")
    if ca_certs is not None and not isinstance(ca_certs, str):
        raise ConfigError("ca_certs", "must be a path to a PEM file")

    return Options(
        url=clean_url,
        username=username,  # type: ignore[arg-type]
        password=password,  # type: ignore[arg-type]
        api_key=api_key,  # type: ignore[arg-type]
        index_prefix=index_prefix,
        refresh=refresh_text,  # type: ignore[arg-type]
        refresh_interval=refresh_interval,
        timeout_s=timeout,
        flavor=_as_choice("flavor", flavor, ("auto", "elasticsearch", "opensearch")),  # type: ignore[arg-type]
        analysis=_as_choice("analysis", analysis, ("auto", "server", "client")),  # type: ignore[arg-type]
        verify_certs=_as_bool("verify_certs", verify_certs),
        ca_certs=ca_certs,
    )
