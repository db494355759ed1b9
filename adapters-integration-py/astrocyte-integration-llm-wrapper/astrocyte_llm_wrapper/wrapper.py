"""``with_memory(client, memory)``: an OpenAI client whose chat completions remember.

Every ``chat.completions.create(...)`` (and ``parse(...)``) of the wrapped client

1. recalls on the last user message (in-process :class:`~astrocyte.Astrocyte` or the
   gateway's ``POST /v1/recall``), within ``recall_timeout``;
2. injects the hits as one system message (:func:`~astrocyte_llm_wrapper.prompt.
   format_memories`) at ``position``, on a copy of ``messages``;
3. calls the real client with everything else unchanged;
4. retains ``user: ...\\nassistant: ...`` (``content_type`` ``conversation``) in the
   background: an asyncio task (async client) or the wrapper's worker thread (sync
   client). A stream is passed through chunk by chunk and retained when it ends.

Memory never fails or delays a call beyond ``recall_timeout``: recall errors and
timeouts are logged and the call goes on unchanged; retain errors are only logged.
Everything else (``client.models``, ``client.embeddings``, ...) is the client's own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, TypedDict, TypeVar, Unpack, overload

import openai
from astrocyte import Astrocyte
from astrocyte.identity.context import AstrocyteContext

from astrocyte_llm_wrapper.backends import BrainMemory, GatewayMemory, MemoryBackend, Scope
from astrocyte_llm_wrapper.options import MemoryOptions
from astrocyte_llm_wrapper.prompt import (
    Position,
    content_text,
    exchange_text,
    format_memories,
    has_text,
    inject,
    last_user_message,
    truncate_utf8,
)

__all__ = [
    "AsyncMemoryOpenAI",
    "AsyncMemoryStream",
    "MemoryOpenAI",
    "MemorySettings",
    "MemoryStats",
    "MemoryStream",
    "with_memory",
]

logger = logging.getLogger("astrocyte_llm_wrapper")

# Attributes the proxies set themselves: never forwarded (e.g. during copy or unpickling,
# before __init__ ran, forwarding them would recurse).
_OWN = frozenset({"_client", "_stream", "_owner", "_engine", "_scope", "_runner", "_tasks"})

T = TypeVar("T")


class MemorySettings(TypedDict, total=False):
    """Keyword settings of :func:`with_memory` (the fields of :class:`MemoryOptions`)."""

    position: Position
    template: str
    max_chars: int
    max_tokens: int | None
    max_results: int
    max_query_chars: int
    recall_timeout: float
    retain_timeout: float
    retain: bool
    retain_tags: Sequence[str]


@dataclass(frozen=True, slots=True)
class MemoryStats:
    """What the wrapper did so far (all views of one wrapper together)."""

    recalls: int = 0
    """Recalls attempted (calls with a user message)."""
    recall_failures: int = 0
    """Recalls that failed or timed out (the call went on without memories)."""
    injections: int = 0
    """Calls that got a memory system message."""
    retains: int = 0
    """Exchanges retained."""
    retain_failures: int = 0
    """Retains that failed or timed out (logged only)."""
    retains_skipped: int = 0
    """Exchanges not retained: no assistant text (e.g. tool calls only)."""


@dataclass(frozen=True, slots=True)
class _Plan:
    messages: list[Any]
    user_text: str


class _Engine:
    """The memory logic shared by every view of one wrapper (sync or async)."""

    def __init__(self, backend: MemoryBackend, options: MemoryOptions) -> None:
        self.backend = backend
        self.options = options
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(MemoryStats.__slots__, 0)

    def count(self, name: str) -> None:
        with self._lock:
            self._counts[name] += 1

    def stats(self) -> MemoryStats:
        with self._lock:
            return MemoryStats(**self._counts)

    def plan(self, kwargs: dict[str, Any]) -> _Plan | None:
        """What to recall on, or ``None`` when the call is none of memory's business."""
        messages = kwargs.get("messages")
        if messages is None or isinstance(messages, str | bytes | dict):
            return None
        try:
            listed = list(messages)
        except TypeError:
            return None
        # A one-shot iterable is consumed now: the call must get the list instead.
        kwargs["messages"] = listed
        found = last_user_message(listed)
        if found is None:
            return None
        return _Plan(messages=listed, user_text=found[0])

    async def recall_message(self, plan: _Plan, scope: Scope) -> str | None:
        """The system message to inject (``None``: no hit fits). May raise."""
        opts = self.options
        texts = await self.backend.recall(
            truncate_utf8(plan.user_text, opts.max_query_chars),
            scope,
            max_results=opts.max_results,
            max_tokens=opts.max_tokens,
        )
        return format_memories(
            texts,
            template=opts.template,
            max_chars=opts.max_chars,
            max_tokens=opts.max_tokens,
            max_results=opts.max_results,
        )

    def recall_failed(self, exc: BaseException) -> None:
        self.count("recall_failures")
        why = "timed out" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
        logger.warning("astrocyte memory: recall failed, calling without memories (%s)", why)

    def apply(self, kwargs: dict[str, Any], plan: _Plan, message: str | None) -> dict[str, Any]:
        if message is None:
            return kwargs
        self.count("injections")
        return {**kwargs, "messages": inject(plan.messages, message, self.options.position)}

    def wants_retain(self, reply: str | None) -> bool:
        if has_text(reply):
            return True
        self.count("retains_skipped")
        return False

    def dropped(self) -> None:
        self.count("retain_failures")
        logger.warning("astrocyte memory: retain dropped, the memory client is closed")

    async def retain(self, user_text: str, reply: str, scope: Scope) -> None:
        """Retain one exchange; never raises (failures are logged and counted)."""
        try:
            async with asyncio.timeout(self.options.retain_timeout):
                await self.backend.retain(
                    exchange_text(user_text, reply), scope, tags=self.options.retain_tags
                )
        except Exception as exc:
            self.count("retain_failures")
            why = "timed out" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
            logger.warning("astrocyte memory: retain failed (%s)", why)
        else:
            self.count("retains")


def _completion_text(result: object) -> str | None:
    """``choices[0].message.content`` of a completion (text parts only)."""
    choices = getattr(result, "choices", None)
    if not choices:
        return None
    message = getattr(choices[0], "message", None)
    return content_text(getattr(message, "content", None))


def _delta_text(chunk: object) -> str | None:
    """Content delta of the first choice (``index`` 0) of a stream chunk."""
    for choice in getattr(chunk, "choices", None) or ():
        if getattr(choice, "index", 0) == 0:
            delta = getattr(choice, "delta", None)
            piece = getattr(delta, "content", None)
            return piece if isinstance(piece, str) else None
    return None


# -- streams -------------------------------------------------------------------------


class MemoryStream(Generic[T]):
    """A sync ``openai.Stream`` passed through chunk by chunk; when it ends (not when it
    is closed early) the assembled reply is retained. Other attributes (``response``,
    ...) are the stream's."""

    def __init__(self, stream: openai.Stream[T], on_end: Callable[[str | None], None]) -> None:
        self._stream = stream
        self._on_end = on_end
        self._parts: list[str] = []
        self._seen = False
        self._ended = False

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        try:
            chunk = next(self._stream)
        except StopIteration:
            self._end()
            raise
        piece = _delta_text(chunk)
        if piece is not None:
            self._seen = True
            self._parts.append(piece)
        return chunk

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            self._on_end("".join(self._parts) if self._seen else None)

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> MemoryStream[T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in _OWN:
            raise AttributeError(name)
        return getattr(self._stream, name)


class AsyncMemoryStream(Generic[T]):
    """An ``openai.AsyncStream`` passed through chunk by chunk; when it ends the
    assembled reply is retained (see :class:`MemoryStream`)."""

    def __init__(self, stream: openai.AsyncStream[T], on_end: Callable[[str | None], None]) -> None:
        self._stream = stream
        self._on_end = on_end
        self._parts: list[str] = []
        self._seen = False
        self._ended = False

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        try:
            chunk = await self._stream.__anext__()
        except StopAsyncIteration:
            if not self._ended:
                self._ended = True
                self._on_end("".join(self._parts) if self._seen else None)
            raise
        piece = _delta_text(chunk)
        if piece is not None:
            self._seen = True
            self._parts.append(piece)
        return chunk

    async def close(self) -> None:
        await self._stream.close()

    async def __aenter__(self) -> AsyncMemoryStream[T]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in _OWN:
            raise AttributeError(name)
        return getattr(self._stream, name)


# -- background work -----------------------------------------------------------------


class _LoopThread:
    """An event loop on a daemon thread: where a sync wrapper runs recall (waited for,
    with a deadline) and retain (not waited for; flushed on close)."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._pending: set[concurrent.futures.Future[None]] = set()
        self._lock = threading.Lock()
        self.closed = False
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="astrocyte-llm-wrapper", daemon=True
        )
        self._thread.start()

    def call(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: concurrent.futures.Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)

    def flush(self, timeout: float | None) -> bool:
        with self._lock:
            pending = list(self._pending)
        _, not_done = concurrent.futures.wait(pending, timeout)
        return not not_done

    def stop(self, last: Coroutine[Any, Any, None]) -> None:
        if self.closed:
            last.close()
            return
        self.closed = True
        try:
            asyncio.run_coroutine_threadsafe(last, self._loop).result(30)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(30)
            if not self._thread.is_alive():
                self._loop.close()


class _TaskSet:
    """Background retains of an async wrapper: referenced until done, awaited on close."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[None]] = set()
        self.closed = False

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro, name="astrocyte-retain")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def flush(self) -> None:
        # Retains started while waiting are waited for too.
        while self._tasks:
            await asyncio.wait(list(self._tasks))


# -- the wrappers --------------------------------------------------------------------


class _Completions:
    def __init__(self, owner: MemoryOpenAI) -> None:
        self._owner = owner

    def create(self, **kwargs: Any) -> Any:
        """``client.chat.completions.create`` with memory (same arguments and result;
        a stream comes back as a :class:`MemoryStream`)."""
        return self._owner._complete(self._owner._client.chat.completions.create, kwargs)

    def parse(self, **kwargs: Any) -> Any:
        """``client.chat.completions.parse`` with memory."""
        return self._owner._complete(self._owner._client.chat.completions.parse, kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in _OWN:
            raise AttributeError(name)
        return getattr(self._owner._client.chat.completions, name)


class _Chat:
    def __init__(self, owner: MemoryOpenAI) -> None:
        self.completions = _Completions(owner)
        self._owner = owner

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in _OWN:
            raise AttributeError(name)
        return getattr(self._owner._client.chat, name)


class _MemoryClient:
    """What the sync and async wrappers share: options, scope, counters, and every other
    attribute passed through to the wrapped client."""

    _engine: _Engine
    _scope: Scope
    _client: object

    @property
    def memory_options(self) -> MemoryOptions:
        """The prompt and retain settings."""
        return self._engine.options

    @property
    def memory_scope(self) -> Scope:
        """Bank and identity of this view's calls."""
        return self._scope

    @property
    def memory_stats(self) -> MemoryStats:
        """Counters of recalls, injections and retains (and their failures)."""
        return self._engine.stats()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in _OWN:
            raise AttributeError(name)
        return getattr(self._client, name)


class MemoryOpenAI(_MemoryClient):
    """A sync ``openai.OpenAI`` with memory; build it with :func:`with_memory`.

    Recall and retain run on the wrapper's own event-loop thread (an in-process brain
    is used only from there). :meth:`close` retains what is still pending, then closes
    the wrapped client; use the wrapper as a context manager to do that.
    """

    _client: openai.OpenAI

    def __init__(
        self, client: openai.OpenAI, engine: _Engine, scope: Scope, runner: _LoopThread
    ) -> None:
        self._client = client
        self._engine = engine
        self._scope = scope
        self._runner = runner
        self.chat = _Chat(self)

    @property
    def client(self) -> openai.OpenAI:
        """The wrapped client."""
        return self._client

    def scoped(
        self,
        *,
        bank: str | None = None,
        context: AstrocyteContext | None = None,
        api_key: str | None = None,
        bearer_token: str | None = None,
    ) -> MemoryOpenAI:
        """A view for another user: same client, options and worker; its calls recall
        from and retain into ``bank`` as that identity. Close the original only."""
        scope = _scope(self._engine.backend, bank, context, api_key, bearer_token)
        return MemoryOpenAI(self._client, self._engine, scope, self._runner)

    def with_options(self, **kwargs: Any) -> MemoryOpenAI:
        """``client.with_options(...)``, still with memory (same scope and worker)."""
        return MemoryOpenAI(
            self._client.with_options(**kwargs), self._engine, self._scope, self._runner
        )

    copy = with_options

    def _complete(self, call: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        if self._runner.closed:
            raise RuntimeError("this memory client is closed")
        engine = self._engine
        plan = engine.plan(kwargs)
        if plan is None:
            return call(**kwargs)
        engine.count("recalls")
        try:
            message = self._runner.call(
                engine.recall_message(plan, self._scope), engine.options.recall_timeout
            )
        except Exception as exc:
            engine.recall_failed(exc)
            message = None
        result = call(**engine.apply(kwargs, plan, message))
        if not engine.options.retain:
            return result

        def retain(reply: str | None) -> None:
            if not engine.wants_retain(reply):
                return
            assert reply is not None
            if self._runner.closed:
                # A stream consumed after close(): the worker is gone.
                engine.dropped()
                return
            self._runner.spawn(engine.retain(plan.user_text, reply, self._scope))

        if isinstance(result, openai.Stream):
            return MemoryStream(result, retain)
        retain(_completion_text(result))
        return result

    def flush(self, timeout: float | None = None) -> bool:
        """Wait for pending retains; ``False`` if some are still running at ``timeout``."""
        return self._runner.flush(timeout)

    def close(self) -> None:
        """Finish pending retains, stop the worker, close the wrapped client."""
        if not self._runner.closed:
            self._runner.flush(None)
            self._runner.stop(self._engine.backend.aclose())
        self._client.close()

    def __enter__(self) -> MemoryOpenAI:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _AsyncCompletions:
    def __init__(self, owner: AsyncMemoryOpenAI) -> None:
        self._owner = owner

    async def create(self, **kwargs: Any) -> Any:
        """``client.chat.completions.create`` with memory (same arguments and result;
        a stream comes back as an :class:`AsyncMemoryStream`)."""
        return await self._owner._complete(self._owner._client.chat.completions.create, kwargs)

    async def parse(self, **kwargs: Any) -> Any:
        """``client.chat.completions.parse`` with memory."""
        return await self._owner._complete(self._owner._client.chat.completions.parse, kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in _OWN:
            raise AttributeError(name)
        return getattr(self._owner._client.chat.completions, name)


class _AsyncChat:
    def __init__(self, owner: AsyncMemoryOpenAI) -> None:
        self.completions = _AsyncCompletions(owner)
        self._owner = owner

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in _OWN:
            raise AttributeError(name)
        return getattr(self._owner._client.chat, name)


class AsyncMemoryOpenAI(_MemoryClient):
    """An ``openai.AsyncOpenAI`` with memory; build it with :func:`with_memory`.

    Retains run as tasks of the caller's event loop, kept referenced; :meth:`aclose`
    (or ``async with``) awaits them, then closes the wrapped client.
    """

    _client: openai.AsyncOpenAI

    def __init__(
        self, client: openai.AsyncOpenAI, engine: _Engine, scope: Scope, tasks: _TaskSet
    ) -> None:
        self._client = client
        self._engine = engine
        self._scope = scope
        self._tasks = tasks
        self.chat = _AsyncChat(self)

    @property
    def client(self) -> openai.AsyncOpenAI:
        """The wrapped client."""
        return self._client

    def scoped(
        self,
        *,
        bank: str | None = None,
        context: AstrocyteContext | None = None,
        api_key: str | None = None,
        bearer_token: str | None = None,
    ) -> AsyncMemoryOpenAI:
        """A view for another user (see :meth:`MemoryOpenAI.scoped`)."""
        scope = _scope(self._engine.backend, bank, context, api_key, bearer_token)
        return AsyncMemoryOpenAI(self._client, self._engine, scope, self._tasks)

    def with_options(self, **kwargs: Any) -> AsyncMemoryOpenAI:
        """``client.with_options(...)``, still with memory."""
        return AsyncMemoryOpenAI(
            self._client.with_options(**kwargs), self._engine, self._scope, self._tasks
        )

    copy = with_options

    async def _complete(self, call: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        if self._tasks.closed:
            raise RuntimeError("this memory client is closed")
        engine = self._engine
        plan = engine.plan(kwargs)
        if plan is None:
            return await call(**kwargs)
        engine.count("recalls")
        try:
            async with asyncio.timeout(engine.options.recall_timeout):
                message = await engine.recall_message(plan, self._scope)
        except Exception as exc:
            engine.recall_failed(exc)
            message = None
        result = await call(**engine.apply(kwargs, plan, message))
        if not engine.options.retain:
            return result

        def retain(reply: str | None) -> None:
            if not engine.wants_retain(reply):
                return
            assert reply is not None
            if self._tasks.closed:
                # A stream consumed after aclose(): nobody would await the task.
                engine.dropped()
                return
            self._tasks.spawn(engine.retain(plan.user_text, reply, self._scope))

        if isinstance(result, openai.AsyncStream):
            return AsyncMemoryStream(result, retain)
        retain(_completion_text(result))
        return result

    async def flush(self) -> None:
        """Wait for the pending retains (each is bounded by ``retain_timeout``; wrap in
        ``asyncio.timeout`` to wait less)."""
        await self._tasks.flush()

    async def aclose(self) -> None:
        """Finish pending retains, close the memory backend and the wrapped client."""
        if not self._tasks.closed:
            await self._tasks.flush()
            self._tasks.closed = True
            await self._engine.backend.aclose()
        await self._client.close()

    close = aclose

    async def __aenter__(self) -> AsyncMemoryOpenAI:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


# -- construction --------------------------------------------------------------------


def _scope(
    backend: MemoryBackend,
    bank: str | None,
    context: AstrocyteContext | None,
    api_key: str | None,
    bearer_token: str | None,
) -> Scope:
    if bank is not None and (not isinstance(bank, str) or not bank):
        raise ValueError("bank must be a non-empty string")
    if context is not None and not isinstance(context, AstrocyteContext):
        raise TypeError(f"context must be an AstrocyteContext, not {type(context).__name__}")
    if isinstance(backend, GatewayMemory):
        if context is not None:
            raise ValueError(
                "context applies to an in-process Astrocyte; over HTTP the gateway derives "
                "the caller from api_key or bearer_token"
            )
    elif api_key is not None or bearer_token is not None:
        raise ValueError("api_key and bearer_token apply to a gateway URL, not to an Astrocyte")
    return Scope(bank=bank, context=context, api_key=api_key, bearer_token=bearer_token)


@overload
def with_memory(
    client: openai.AsyncOpenAI,
    memory: Astrocyte | str,
    *,
    bank: str | None = ...,
    context: AstrocyteContext | None = ...,
    api_key: str | None = ...,
    bearer_token: str | None = ...,
    gateway_timeout: float = ...,
    **settings: Unpack[MemorySettings],
) -> AsyncMemoryOpenAI: ...


@overload
def with_memory(
    client: openai.OpenAI,
    memory: Astrocyte | str,
    *,
    bank: str | None = ...,
    context: AstrocyteContext | None = ...,
    api_key: str | None = ...,
    bearer_token: str | None = ...,
    gateway_timeout: float = ...,
    **settings: Unpack[MemorySettings],
) -> MemoryOpenAI: ...


def with_memory(
    client: openai.OpenAI | openai.AsyncOpenAI,
    memory: Astrocyte | str,
    *,
    bank: str | None = None,
    context: AstrocyteContext | None = None,
    api_key: str | None = None,
    bearer_token: str | None = None,
    gateway_timeout: float = 10.0,
    **settings: Unpack[MemorySettings],
) -> MemoryOpenAI | AsyncMemoryOpenAI:
    """``client`` with memory from ``memory``: an :class:`~astrocyte.Astrocyte` (in
    process; ``context`` is the caller) or the base URL of an Astrocyte gateway
    (``api_key`` / ``bearer_token`` authenticate; the gateway derives the caller).

    ``bank``: the bank to recall from and retain into (default: the caller's default
    bank). ``settings``: the fields of :class:`MemoryOptions`. An ``openai.AsyncOpenAI``
    gives an :class:`AsyncMemoryOpenAI`, an ``openai.OpenAI`` a :class:`MemoryOpenAI`.
    """
    options = MemoryOptions(**settings)
    backend: MemoryBackend
    if isinstance(memory, Astrocyte):
        backend = BrainMemory(memory)
    elif isinstance(memory, str):
        backend = GatewayMemory(memory, timeout=gateway_timeout)
    else:
        raise TypeError(
            f"memory must be an Astrocyte or a gateway URL, not {type(memory).__name__}"
        )
    scope = _scope(backend, bank, context, api_key, bearer_token)
    engine = _Engine(backend, options)
    if isinstance(client, openai.AsyncOpenAI):
        return AsyncMemoryOpenAI(client, engine, scope, _TaskSet())
    if isinstance(client, openai.OpenAI):
        return MemoryOpenAI(client, engine, scope, _LoopThread())
    raise TypeError(
        f"client must be openai.OpenAI or openai.AsyncOpenAI, not {type(client).__name__}"
    )
