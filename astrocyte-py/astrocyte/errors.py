"""Typed errors raised by every public entry point.

Each error names the offending ``field`` (or config ``key``) and, where we can tell,
the ``fix``, so a caller can act on it without reading our source.
"""

from __future__ import annotations


class AstrocyteError(Exception):
    """Base class of every error Astrocyte raises on purpose."""

    code: str = "astrocyte_error"

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        self.message = message
        self.fix = fix
        super().__init__(self._render())

    def _render(self) -> str:
        return f"{self.message} (fix: {self.fix})" if self.fix else self.message


class ValidationError(AstrocyteError, ValueError):
    """A request argument is missing, of the wrong type, or out of range.

    ``field`` is the argument path, e.g. ``"content"`` or ``"items[3].occurred_at"``.
    """

    code = "validation_error"

    def __init__(self, field: str, message: str, *, fix: str | None = None) -> None:
        self.field = field
        super().__init__(f"{field}: {message}", fix=fix)


class PayloadTooLarge(ValidationError):
    """Content or a batch exceeds a configured size limit."""

    code = "payload_too_large"


class ConfigError(AstrocyteError):
    """The configuration is invalid; ``key`` is the dotted path of the bad key."""

    code = "config_error"

    def __init__(self, key: str, message: str, *, fix: str | None = None) -> None:
        self.key = key
        super().__init__(f"config {key}: {message}", fix=fix)


class BankNotFound(AstrocyteError, LookupError):
    """The named memory bank does not exist (and was not auto-created)."""

    code = "bank_not_found"

    def __init__(self, bank_id: str) -> None:
        self.bank_id = bank_id
        self.field = "bank_id"
        super().__init__(
            f"bank_id: bank {bank_id!r} does not exist",
            fix="retain something into it first (banks are created on first retain) "
            "or call create_bank()",
        )


class AccessDenied(AstrocyteError, PermissionError):
    """The caller's context lacks the permission the operation needs.

    ``principal``, ``bank_id`` (as the caller named it) and ``permission`` say who was
    refused what, where. The error is the same whether or not the bank exists, so it
    never tells a caller about banks it may not see.
    """

    code = "access_denied"

    def __init__(
        self,
        message: str,
        *,
        fix: str | None = None,
        principal: str | None = None,
        bank_id: str | None = None,
        permission: str | None = None,
    ) -> None:
        self.principal = principal
        self.bank_id = bank_id
        self.permission = permission
        super().__init__(message, fix=fix)

    @classmethod
    def for_bank(
        cls,
        principal: str,
        bank_id: str,
        permission: str,
        *,
        on_behalf_of: str | None = None,
    ) -> AccessDenied:
        """The error for ``principal`` (acting for ``on_behalf_of``) lacking
        ``permission`` on ``bank_id``."""
        who = repr(principal)
        if on_behalf_of is not None:
            who += f" acting on behalf of {on_behalf_of!r}"
        return cls(
            f"principal {who} lacks the {permission!r} permission on bank {bank_id!r}",
            fix="ask an administrator for a grant in access_grants"
            + ("; a delegated call needs it for both principals" if on_behalf_of else ""),
            principal=principal,
            bank_id=bank_id,
            permission=permission,
        )


class StoreError(AstrocyteError):
    """A storage backend failed; the operation was not (or not fully) applied."""

    code = "store_error"


class ProviderUnavailable(StoreError):
    """A storage server cannot be reached, timed out, or went away mid-operation.

    ``provider`` names the adapter (e.g. ``"pgvector"``). The operation was not applied;
    retrying once the server is back is safe. Bad credentials or a bad address are a
    :class:`ConfigError` instead, because retrying cannot fix them.
    """

    code = "provider_unavailable"

    def __init__(self, provider: str, message: str, *, fix: str | None = None) -> None:
        self.provider = provider
        super().__init__(
            f"{provider}: {message}",
            fix=fix or "check that the server is running and reachable, then retry",
        )


class ProviderError(AstrocyteError):
    """An embedder or LLM provider failed (network, protocol or model error)."""

    code = "provider_error"


class EmbedderError(ProviderError):
    """The embedding model could not be loaded or failed to embed."""

    code = "embedder_error"


class LLMError(ProviderError):
    """The chat-completion provider failed or returned an unusable answer."""

    code = "llm_error"


class PIIRejected(ValidationError):
    """Content holds personal data that the bank's PII policy rejects; nothing was stored.

    ``field`` names where it was found (``"content"``, ``"items[2].metadata.email"``) and
    ``kinds`` the detectors that fired (``["email"]``). The offending value itself is
    never part of the error, so it cannot leak into logs.
    """

    code = "pii_rejected"

    def __init__(self, field: str, kinds: list[str], bank_id: str) -> None:
        self.kinds = kinds
        self.bank_id = bank_id
        super().__init__(
            field,
            f"contains personal data ({', '.join(kinds)}) that the policy of bank "
            f"{bank_id!r} rejects",
            fix=f"remove it, or set policy.pii.detectors.{kinds[0]} to 'redact'",
        )


class RateLimited(AstrocyteError):
    """Too many calls: a rate limit of the caller or of the bank is exhausted.

    ``retry_after_s`` is how long until the call would be admitted (if nothing else
    consumes the tokens meanwhile); ``scope`` is ``"principal"`` or ``"bank"``.
    """

    code = "rate_limited"

    def __init__(self, retry_after_s: float, *, operation: str = "", scope: str = "") -> None:
        self.retry_after_s = retry_after_s
        self.operation = operation
        self.scope = scope
        what = f"{operation} rate limit" if operation else "rate limit"
        where = f" of the {scope}" if scope else ""
        super().__init__(
            f"{what}{where} exceeded",
            fix=f"retry after {retry_after_s:.3f}s or raise policy.rate_limits",
        )


class QuotaExceeded(AstrocyteError):
    """Storing the request would exceed a quota (memories per bank, bytes per tenant);
    nothing of the request was stored.

    ``quota`` names it (``"max_memories_per_bank"``), ``limit`` is its value, ``used``
    what is already stored and ``requested`` what the request needed.
    """

    code = "quota_exceeded"

    def __init__(
        self, quota: str, *, limit: int, used: int, requested: int, subject: str, fix: str
    ) -> None:
        self.quota = quota
        self.limit = limit
        self.used = used
        self.requested = requested
        self.subject = subject
        super().__init__(
            f"{quota} of {subject} exceeded: {used} used + {requested} requested > {limit}",
            fix=fix,
        )
