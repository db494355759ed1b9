"""Machinery shared by the embedder and LLM providers: factories and HTTP.

:func:`build_provider` turns a config mapping such as ``{"provider": "openai",
"model": "..."}`` into an instance, reporting every mistake as a
:class:`~astrocyte.errors.ConfigError` that names the offending key.

For the OpenAI-compatible HTTP providers, one place decides what is retried (429,
408, 5xx except 501, failures to connect), how long to wait (``Retry-After`` /
``retry-after-ms`` when the server sends one, else exponential back-off with
jitter) and how failures are reported: as the caller's
:class:`~astrocyte.errors.ProviderError` subclass with the HTTP status and a short
message from which the API key has been scrubbed.
"""

from __future__ import annotations

import asyncio
import email.utils
import importlib
import inspect
import logging
import math
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from astrocyte.errors import AstrocyteError, ConfigError, ProviderError, ValidationError

_log = logging.getLogger("astrocyte.providers")

DEFAULT_BASE_URL = "https://api.openai.com/v1"
"""OpenAI's API root; like the OpenAI SDK, base URLs include the ``/v1`` part."""

_MAX_DETAIL = 300


def build_provider(
    spec: Mapping[str, Any],
    *,
    key: str,
    builtins: Mapping[str, Callable[..., Any]],
    default: str | None,
    required_members: tuple[str, ...],
    protocol: str,
) -> Any:
    """Instantiate the provider ``spec`` describes.

    ``spec["provider"]`` names a built-in (a key of ``builtins``) or an import path
    ``"package.module:ClassName"``; every other entry is a keyword argument. ``key``
    is the spec's dotted config path, used to name bad keys in errors.

    Raises:
        ConfigError: unknown provider or option, missing option, invalid value, or
            a class lacking ``required_members`` of the ``protocol``.
    """
    choices = ", ".join(repr(name) for name in builtins)
    valid = f"use one of {choices}, or 'package.module:ClassName'"
    if not isinstance(spec, Mapping):
        raise ConfigError(key, f"must be a mapping, got {type(spec).__name__}", fix=valid)
    provider = spec.get("provider", default)
    if provider is None:
        raise ConfigError(f"{key}.provider", "is required", fix=valid)
    if not isinstance(provider, str) or not provider:
        raise ConfigError(f"{key}.provider", f"must be a string, got {provider!r}", fix=valid)
    if provider in builtins:
        factory = builtins[provider]
    elif ":" in provider:
        factory = _import_path(provider, key=f"{key}.provider")
    else:
        raise ConfigError(f"{key}.provider", f"unknown provider {provider!r}", fix=valid)

    options: dict[str, Any] = {}
    for name, value in spec.items():
        if name == "provider":
            continue
        if not isinstance(name, str):
            raise ConfigError(key, f"option names must be strings, got {name!r}")
        options[name] = value
    _check_options(factory, options, key=key, provider=provider)

    try:
        instance = factory(**options)
    except ValidationError as exc:
        # Constructors validate their own arguments; re-home the error at the
        # config path the user actually wrote.
        detail = exc.message.removeprefix(f"{exc.field}: ")
        raise ConfigError(f"{key}.{exc.field}", detail, fix=exc.fix) from exc
    except AstrocyteError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(key, f"invalid options for provider {provider!r}: {exc}") from exc

    missing = [m for m in required_members if not _has_static(instance, m)]
    if missing:
        raise ConfigError(
            f"{key}.provider",
            f"{provider!r} does not implement the {protocol} protocol (missing {missing})",
        )
    return instance


def _import_path(path: str, *, key: str) -> Callable[..., Any]:
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ConfigError(key, f"import path {path!r} must look like 'package.module:ClassName'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            key,
            f"cannot import module {module_name!r}: {exc}",
            fix="install the package that provides it, or fix the name",
        ) from exc
    target: Any = module
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError as exc:
            raise ConfigError(key, f"module {module_name!r} has no attribute {attr!r}") from exc
    if not callable(target):
        raise ConfigError(key, f"{path!r} is not a class or factory function")
    result: Callable[..., Any] = target
    return result


def _check_options(
    factory: Callable[..., Any], options: Mapping[str, Any], *, key: str, provider: str
) -> None:
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return  # builtins / C types without a signature: let the call decide
    kinds = {p.kind for p in params.values()}
    accepted = [
        name
        for name, p in params.items()
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    ]
    if inspect.Parameter.VAR_KEYWORD not in kinds:
        for name in options:
            if name not in accepted:
                raise ConfigError(
                    f"{key}.{name}",
                    f"unknown option for provider {provider!r}",
                    fix=f"valid options: {', '.join(sorted(accepted)) or '(none)'}",
                )
    for name, p in params.items():
        if name in accepted and p.default is inspect.Parameter.empty and name not in options:
            raise ConfigError(f"{key}.{name}", f"is required for provider {provider!r}")


def _has_static(obj: object, name: str) -> bool:
    # getattr_static, not hasattr: evaluating a property (e.g. a not-yet-known
    # ``dimensions``) must not run code or raise during a type check.
    try:
        inspect.getattr_static(obj, name)
    except AttributeError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When and how long to retry a failed request.

    ``max_retries`` extra attempts after the first; waits grow as
    ``backoff_base * 2**attempt`` (with jitter) up to ``backoff_max`` seconds. A
    server asking (``Retry-After``) for a longer wait than ``backoff_max`` is not
    retried: hammering it sooner would only be refused again.
    """

    max_retries: int = 3
    backoff_base: float = 0.5
    backoff_max: float = 30.0

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt + 1`` (no server hint)."""
        ceiling = min(self.backoff_max, self.backoff_base * 2.0**attempt)
        # "Equal jitter": at least half the step, so clients spread out without any
        # of them retrying immediately.
        return ceiling / 2 + random.uniform(0, ceiling / 2)


def check_common_options(
    *,
    base_url: str,
    timeout: float,
    max_retries: int,
    backoff_base: float,
    backoff_max: float,
) -> None:
    """Validate constructor options shared by both providers (ValidationError)."""
    if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
        raise ValidationError(
            "base_url",
            f"must be an http(s) URL, got {base_url!r}",
            fix="e.g. https://api.openai.com/v1 or http://localhost:11434/v1",
        )
    if not _positive_number(timeout):
        raise ValidationError("timeout", f"must be a positive number of seconds, got {timeout!r}")
    if not isinstance(max_retries, int) or isinstance(max_retries, bool) or max_retries < 0:
        raise ValidationError("max_retries", f"must be an integer >= 0, got {max_retries!r}")
    if not _positive_number(backoff_base):
        raise ValidationError("backoff_base", f"must be a positive number, got {backoff_base!r}")
    if not _positive_number(backoff_max):
        raise ValidationError("backoff_max", f"must be a positive number, got {backoff_max!r}")


def resolve_api_key(api_key: str | None, api_key_env: str | None) -> str | None:
    """The explicit key, else the named environment variable, else no key.

    There is deliberately no implicit ``OPENAI_API_KEY`` fallback: it would send
    the user's OpenAI key to whatever local server ``base_url`` points at.
    """
    if api_key:
        return api_key
    if api_key_env:
        value = os.environ.get(api_key_env)
        if not value:
            raise ValidationError(
                "api_key_env",
                f"environment variable {api_key_env} is not set",
                fix=f"export {api_key_env}=... or pass api_key",
            )
        return value
    return None


def build_headers(api_key: str | None, extra: Mapping[str, str] | None) -> dict[str, str]:
    """Request headers: extras first, so they cannot silently drop the API key."""
    headers = {str(k): str(v) for k, v in (extra or {}).items()}
    headers.setdefault("Accept", "application/json")
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def openai_client(
    *,
    base_url: str,
    api_key: str | None,
    api_key_env: str | None,
    headers: Mapping[str, str] | None,
    timeout: float,
    max_retries: int,
    backoff_base: float,
    backoff_max: float,
    error_cls: type[ProviderError],
    label: str,
) -> RedactingClient:
    """The HTTP client every OpenAI-compatible provider uses: key resolved from the
    argument or its environment variable, bearer header, retries, and the key scrubbed
    from any error text."""
    key = resolve_api_key(api_key, api_key_env)
    return RedactingClient(
        base_url=base_url,
        headers=build_headers(key, headers),
        timeout=float(timeout),
        policy=RetryPolicy(
            max_retries=max_retries,
            backoff_base=float(backoff_base),
            backoff_max=float(backoff_max),
        ),
        error_cls=error_cls,
        label=label,
        secrets=(key,) if key else (),
    )


class RedactingClient:
    """An ``httpx.AsyncClient`` (created lazily, inside the running loop) plus the
    retry policy and the secrets to scrub from every error message."""

    def __init__(
        self,
        *,
        base_url: str,
        headers: Mapping[str, str],
        timeout: float,
        policy: RetryPolicy,
        error_cls: type[ProviderError],
        label: str,
        secrets: tuple[str, ...],
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = dict(headers)
        self._timeout = timeout
        self.policy = policy
        self._error_cls = error_cls
        self._label = label
        self._secrets = tuple(s for s in secrets if s)
        self._client: httpx.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    def _get_client(self) -> httpx.AsyncClient:
        if self._closed:
            raise self._error_cls(f"{self._label}: the client is closed", fix="create a new one")
        loop = asyncio.get_running_loop()
        if self._client is not None and self._client_loop is not loop:
            # httpx pools are bound to the loop that opened them; a provider shared
            # across loops (asyncio.run per call, per-test loops) needs a fresh pool.
            # The old one cannot be closed from here, so it is left to the GC.
            self._client = None
        if self._client is None:
            self._client = httpx.AsyncClient(
                headers=self._headers, timeout=httpx.Timeout(self._timeout)
            )
            self._client_loop = loop
        return self._client

    async def close(self) -> None:
        """Close the connection pool; later requests raise."""
        self._closed = True
        client, self._client = self._client, None
        if client is not None and self._client_loop is asyncio.get_running_loop():
            await client.aclose()
        self._client_loop = None

    def redact(self, text: str) -> str:
        """``text`` with every secret replaced, cut to a readable length."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        text = " ".join(text.split())
        return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 3] + "..."

    def error(self, message: str, *, fix: str | None = None) -> ProviderError:
        """A caller-typed error whose message names the provider and is scrubbed."""
        return self._error_cls(self.redact(f"{self._label}: {message}"), fix=fix)

    async def get_ok(self, path: str) -> tuple[bool, str]:
        """One unretried GET; ``(ok, detail)`` for health probes."""
        url = f"{self.base_url}/{path.lstrip('/')}"
        try:
            response = await self._get_client().get(url)
        except ProviderError as exc:
            return False, str(exc)
        except httpx.HTTPError as exc:
            return False, self.redact(f"GET {url} failed: {type(exc).__name__}: {exc}")
        if response.is_success:
            return True, f"GET {url}: HTTP {response.status_code}"
        return False, self.redact(f"GET {url}: HTTP {response.status_code}")

    async def post_json(self, path: str, payload: Mapping[str, Any]) -> Any:
        """POST ``payload`` and return the decoded JSON body, retrying transient
        failures per the policy. Raises the caller's error class otherwise."""
        url = f"{self.base_url}/{path.lstrip('/')}"
        client = self._get_client()
        attempt = 0
        while True:
            started = time.monotonic()
            try:
                response = await client.post(url, json=payload)
            except (
                httpx.ConnectError,
                httpx.ConnectTimeout,
                httpx.PoolTimeout,
                httpx.RemoteProtocolError,
            ) as exc:
                # Nothing was processed (or the server dropped us before answering):
                # safe to try again.
                if attempt < self.policy.max_retries:
                    delay = self.policy.backoff(attempt)
                    _log.warning(
                        "%s: %s on POST %s; retry %d/%d in %.2fs",
                        self._label,
                        type(exc).__name__,
                        url,
                        attempt + 1,
                        self.policy.max_retries,
                        delay,
                    )
                    await asyncio.sleep(delay)
                    attempt += 1
                    continue
                raise self.error(
                    f"cannot reach {url} after {attempt + 1} attempt(s): "
                    f"{type(exc).__name__}: {exc}",
                    fix="check base_url and that the server is running",
                ) from exc
            except httpx.TimeoutException as exc:
                # Not retried: a server that hung once usually hangs again, and each
                # retry would add another full timeout to the caller's wait.
                raise self.error(
                    f"no response from {url} within {self._timeout:g}s ({type(exc).__name__})",
                    fix="raise timeout, or check the server's load",
                ) from exc
            except httpx.HTTPError as exc:
                raise self.error(
                    f"POST {url} failed: {type(exc).__name__}: {exc}",
                ) from exc

            status = response.status_code
            if _is_retryable(status) and attempt < self.policy.max_retries:
                hint = _retry_after(response.headers)
                if hint is not None and hint > self.policy.backoff_max:
                    raise self.error(
                        f"HTTP {status} from {url}; server asks to retry after {hint:g}s, "
                        f"more than backoff_max={self.policy.backoff_max:g}s",
                        fix="slow down, or raise backoff_max",
                    )
                delay = hint if hint is not None else self.policy.backoff(attempt)
                _log.warning(
                    "%s: HTTP %d on POST %s; retry %d/%d in %.2fs",
                    self._label,
                    status,
                    url,
                    attempt + 1,
                    self.policy.max_retries,
                    delay,
                )
                await asyncio.sleep(delay)
                attempt += 1
                continue
            if status >= 400:
                raise self.error(
                    f"HTTP {status} from {url} after {attempt + 1} attempt(s): "
                    f"{_error_detail(response)}",
                    fix=_fix_for_status(status),
                )
            try:
                body = response.json()
            except ValueError as exc:
                raise self.error(
                    f"HTTP {status} from {url} is not valid JSON: {response.text[:80]!r}",
                    fix="check that base_url points at an OpenAI-compatible API",
                ) from exc
            _log.debug(
                "%s: POST %s -> %d in %.3fs", self._label, url, status, time.monotonic() - started
            )
            return body


def _positive_number(value: object) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value > 0
    )


def _is_retryable(status: int) -> bool:
    # 501/505 mean "never going to work"; every other 5xx may be transient.
    return status in (408, 429) or (status >= 500 and status not in (501, 505))


def _retry_after(headers: httpx.Headers) -> float | None:
    """Seconds the server asked us to wait, if it said (``retry-after-ms`` is what
    OpenAI sends; ``Retry-After`` is seconds or an HTTP date)."""
    raw_ms = headers.get("retry-after-ms")
    if raw_ms is not None:
        try:
            ms = float(raw_ms)
        except ValueError:
            ms = math.nan
        if math.isfinite(ms) and ms >= 0:
            return ms / 1000.0
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError):
            return None
        seconds = when.timestamp() - time.time()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _error_detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return repr(response.text[:120]) if response.text else "(empty body)"
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
        if isinstance(body.get("detail"), str):
            return str(body["detail"])
        if isinstance(body.get("message"), str):
            return str(body["message"])
    return repr(response.text[:120])


def _fix_for_status(status: int) -> str | None:
    if status in (401, 403):
        return "check api_key / api_key_env"
    if status == 404:
        return "check base_url (usually ends in /v1) and the model name"
    if status in (400, 413, 422):
        return "the server rejected the request; see its message"
    if status == 429:
        return "rate limited: slow down, or raise max_retries"
    if status >= 500:
        return "the provider failed; retry later"
    return None
