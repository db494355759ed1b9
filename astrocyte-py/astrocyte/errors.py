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
    """The caller's context lacks the permission the operation needs."""

    code = "access_denied"


class StoreError(AstrocyteError):
    """A storage backend failed; the operation was not (or not fully) applied."""

    code = "store_error"


class ProviderError(AstrocyteError):
    """An embedder or LLM provider failed (network, protocol or model error)."""

    code = "provider_error"


class EmbedderError(ProviderError):
    """The embedding model could not be loaded or failed to embed."""

    code = "embedder_error"


class LLMError(ProviderError):
    """The chat-completion provider failed or returned an unusable answer."""

    code = "llm_error"
