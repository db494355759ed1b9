"""Masking secrets before a config is shown (``astrocyte config show``) or logged.

What counts as a secret is decided by name, because after ``${ENV}`` substitution a
secret is just a string: values of keys named like ``api_key``, ``secret``,
``password``, ``token``, ``credentials``, ``private_key``; the ``key`` of each gateway
API key; credential-like request headers; and the password part of URLs and DSNs
wherever they appear. Names that merely *point* at a secret (``api_key_env``) are
kept, since they are what a reader needs to find it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

MASK = "***"

_SECRET_KEY = re.compile(
    r"(^|[_-])(api[_-]?key|secret|password|passwd|pwd|token|access[_-]?token|"
    r"refresh[_-]?token|credentials?|private[_-]?key|client[_-]?secret)$",
    re.IGNORECASE,
)
_SECRET_HEADER = re.compile(r"auth|key|token|secret|cookie|session|signature", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+(?=@)")
_PARAM_PASSWORD = re.compile(
    r"(?P<head>(?:^|[?&;\s])(?:password|passwd|pwd|token|api[_-]?key|secret|access_token)=)"
    r"[^&;\s]+",
    re.IGNORECASE,
)


def mask_secrets(data: Any, *, _key: str = "", _parents: tuple[str, ...] = ()) -> Any:
    """A copy of ``data`` (a ``model_dump(mode="json")``) with secrets replaced by ``***``.

    Empty and null values are kept, so the output still shows what is *not* set.
    """
    if isinstance(data, Mapping):
        header_map = _key.lower() == "headers"
        out: dict[str, Any] = {}
        for key, value in data.items():
            name = str(key)
            if header_map and isinstance(value, str) and value and _SECRET_HEADER.search(name):
                out[name] = MASK
            else:
                out[name] = mask_secrets(value, _key=name, _parents=(*_parents, _key))
        return out
    if isinstance(data, list):
        return [mask_secrets(v, _key=_key, _parents=_parents) for v in data]
    if isinstance(data, str) and data:
        if _is_secret_key(_key, _parents):
            return MASK
        return mask_in_text(data)
    return data


def _is_secret_key(key: str, parents: tuple[str, ...]) -> bool:
    if _SECRET_KEY.search(key):
        return True
    # gateway.auth.api_keys[*].key: the key itself, under a neutral name.
    return key == "key" and bool(parents) and parents[-1] == "api_keys"


def mask_in_text(text: str) -> str:
    """``text`` with URL/DSN passwords and ``password=``-style parameters masked."""
    text = _URL_PASSWORD.sub(lambda m: m.group("head") + MASK, text)
    return _PARAM_PASSWORD.sub(lambda m: m.group("head") + MASK, text)
