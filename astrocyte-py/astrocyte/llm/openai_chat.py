"""Chat completions from any OpenAI-compatible ``/v1/chat/completions`` endpoint.

Works with OpenAI, vLLM, Ollama, LiteLLM and similar servers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from astrocyte._providers import DEFAULT_BASE_URL, check_common_options, openai_client
from astrocyte.errors import LLMError, ValidationError
from astrocyte.spi import ChatMessage, Completion, HealthStatus

__all__ = ["OpenAIChatProvider"]

_ROLES = frozenset({"system", "user", "assistant"})


class OpenAIChatProvider:
    """Non-streaming chat completions over an OpenAI-compatible API.

    Args:
        model: model name sent in each request.
        base_url: API root including the version, e.g. ``https://api.openai.com/v1``,
            ``http://localhost:8000/v1`` (vLLM) or ``http://localhost:11434/v1``
            (Ollama); requests go to ``{base_url}/chat/completions``.
        api_key: sent as ``Authorization: Bearer``; never logged or put in errors.
        api_key_env: name of an environment variable holding the key. With
            neither, no Authorization header is sent.
        timeout: seconds per HTTP request (generation included).
        max_retries: extra attempts on 429/408/5xx and connection failures.
        headers: extra HTTP headers.
        max_tokens_param: request field for the output cap; OpenAI's reasoning
            models want ``"max_completion_tokens"`` instead of ``"max_tokens"``.
        extra_body: extra request fields merged into every request (e.g.
            ``{"seed": 1}``); they cannot override ``model`` or ``messages``.
        backoff_base / backoff_max: retry wait growth and ceiling, seconds.
    """

    def __init__(
        self,
        *,
        model: str,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str | None = None,
        api_key_env: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 2,
        headers: Mapping[str, str] | None = None,
        max_tokens_param: str = "max_tokens",
        extra_body: Mapping[str, Any] | None = None,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        if not isinstance(model, str) or not model:
            raise ValidationError("model", "must be a non-empty string")
        check_common_options(
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
        )
        if max_tokens_param not in ("max_tokens", "max_completion_tokens"):
            raise ValidationError(
                "max_tokens_param",
                f"must be 'max_tokens' or 'max_completion_tokens', got {max_tokens_param!r}",
            )
        self._model = model
        self._max_tokens_param = max_tokens_param
        self._extra_body = dict(extra_body or {})
        self._http = openai_client(
            base_url=base_url,
            api_key=api_key,
            api_key_env=api_key_env,
            headers=headers,
            timeout=timeout,
            max_retries=max_retries,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            error_cls=LLMError,
            label=f"chat model {model!r}",
        )

    def __repr__(self) -> str:
        # Spelled out so a debugger or log line never shows the headers (the key).
        return f"OpenAIChatProvider(model={self._model!r}, base_url={self._http.base_url!r})"

    @property
    def model_id(self) -> str:
        """Model name sent to the provider."""
        return self._model

    @property
    def base_url(self) -> str:
        """API root the requests go to."""
        return self._http.base_url

    async def complete(
        self,
        messages: Sequence[ChatMessage],
        *,
        max_tokens: int | None = None,
        temperature: float = 0.0,
    ) -> Completion:
        """One non-streaming completion of ``messages``.

        Raises:
            ValidationError: no messages, or a message with an unknown role.
            LLMError: HTTP failure after retries, or a response without text.
        """
        if isinstance(messages, ChatMessage) or not messages:
            raise ValidationError("messages", "expected a non-empty sequence of ChatMessage")
        wire: list[dict[str, str]] = []
        for i, message in enumerate(messages):
            if not isinstance(message, ChatMessage):
                raise ValidationError(
                    f"messages[{i}]", f"expected ChatMessage, got {type(message).__name__}"
                )
            if message.role not in _ROLES:
                raise ValidationError(f"messages[{i}].role", f"unknown role {message.role!r}")
            wire.append({"role": message.role, "content": message.content})
        if max_tokens is not None and (
            not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1
        ):
            raise ValidationError("max_tokens", f"must be a positive integer, got {max_tokens!r}")

        payload: dict[str, Any] = dict(self._extra_body)
        payload.update(
            {"model": self._model, "messages": wire, "temperature": temperature, "stream": False}
        )
        if max_tokens is not None:
            payload[self._max_tokens_param] = max_tokens
        body = await self._http.post_json("chat/completions", payload)
        return self._parse(body)

    async def health(self) -> HealthStatus:
        """Whether the server answers ``GET {base_url}/models`` (free, unlike a chat)."""
        ok, detail = await self._http.get_ok("models")
        return HealthStatus(ok=ok, detail=detail)

    async def close(self) -> None:
        """Close the HTTP connection pool."""
        await self._http.close()

    def _parse(self, body: Any) -> Completion:
        if not isinstance(body, dict):
            raise self._http.error("response is not a JSON object")
        choices = body.get("choices")
        if not isinstance(choices, list) or not choices:
            raise self._http.error("response has no choices")
        first = choices[0]
        message = first.get("message") if isinstance(first, dict) else None
        if not isinstance(message, dict):
            raise self._http.error("choices[0] has no message")
        content = message.get("content")
        if not isinstance(content, str):
            # content is null when the model refused or only called tools.
            reason = first.get("finish_reason") if isinstance(first, dict) else None
            raise self._http.error(
                f"choices[0].message.content is {type(content).__name__}, not text "
                f"(finish_reason={reason!r})"
            )
        usage = body.get("usage")
        prompt_tokens = completion_tokens = None
        if isinstance(usage, dict):
            prompt_tokens = _int_or_none(usage.get("prompt_tokens"))
            completion_tokens = _int_or_none(usage.get("completion_tokens"))
        model = body.get("model")
        return Completion(
            text=content,
            model=model if isinstance(model, str) and model else self._model,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
        )


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
