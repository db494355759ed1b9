"""The wrapper around the REAL openai client, with an in-process Astrocyte, against a
real OpenAI-compatible server: what the model received, what was retained, fail-open,
identity, background retain and pass-through."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import openai
import pytest
from astrocyte import Astrocyte
from astrocyte.identity.context import AstrocyteContext
from astrocyte.testing.openai_server import OpenAICompatibleServer
from conftest import FAST, TEMPLATE_HEAD, fast_config

from astrocyte_llm_wrapper import AsyncMemoryOpenAI, MemoryOpenAI, with_memory

BANK = "notes"


def aclient(llm: OpenAICompatibleServer, **kw: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=llm.base_url, api_key="sk-test", max_retries=0, **kw)


def sclient(llm: OpenAICompatibleServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=llm.base_url, api_key="sk-test", max_retries=0)


def chat_messages(llm: OpenAICompatibleServer) -> list[list[dict[str, Any]]]:
    return [r.json["messages"] for r in llm.requests_to("chat/completions")]


async def texts(brain: Astrocyte, query: str, bank: str = BANK, **kw: Any) -> list[str]:
    result = await brain.recall(query, bank, **kw)
    return [h.text for h in result.hits]


# -- async ---------------------------------------------------------------------------------


async def test_injects_the_exact_system_message_and_retains_the_exchange(
    brain: Astrocyte, llm: OpenAICompatibleServer
) -> None:
    await brain.retain("Alice's favourite colour is teal.", BANK)
    async with with_memory(aclient(llm), brain, bank=BANK) as client:
        assert isinstance(client, AsyncMemoryOpenAI)
        messages = [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What colour should Alice's mug be?"},
        ]
        reply = await client.chat.completions.create(model="m", messages=messages)
        assert reply.choices[0].message.content == "noted: What colour should Alice's mug be?"
        # The caller's list is untouched; the server got the memories first.
        assert len(messages) == 2
        assert chat_messages(llm) == [
            [
                {
                    "role": "system",
                    "content": TEMPLATE_HEAD + "- Alice's favourite colour is teal.",
                },
                *messages,
            ]
        ]
        await client.flush()
        stats = client.memory_stats
    assert (stats.recalls, stats.injections, stats.retains, stats.recall_failures) == (1, 1, 1, 0)
    result = await brain.recall("mug colour Alice", BANK, max_results=10)
    retained = [h for h in result.hits if h.text.startswith("user:")]
    assert [h.text for h in retained] == [
        "user: What colour should Alice's mug be?\n"
        "assistant: noted: What colour should Alice's mug be?"
    ]
    assert retained[0].provenance.content_type == "conversation"
    assert retained[0].provenance.metadata["source"] == "astrocyte-llm-wrapper"


async def test_the_next_turn_remembers_the_previous_one(
    brain: Astrocyte, llm: OpenAICompatibleServer
) -> None:
    async with with_memory(aclient(llm), brain, bank=BANK, retain_tags=["chat"]) as client:
        await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "My name is Zed."}]
        )
        # Nothing to recall yet (the bank does not even exist): no system message.
        assert chat_messages(llm)[0] == [{"role": "user", "content": "My name is Zed."}]
        await client.flush()
        await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "What is my name?"}]
        )
    second = chat_messages(llm)[1]
    assert second[0] == {
        "role": "system",
        "content": TEMPLATE_HEAD + "- user: My name is Zed. assistant: noted: My name is Zed.",
    }
    result = await brain.recall("name", BANK, tags=["chat"])
    assert len(result.hits) == 2


async def test_before_last_user_position_and_budget(
    brain: Astrocyte, llm: OpenAICompatibleServer
) -> None:
    for i in range(3):
        await brain.retain(f"fact number {i} about zebras", BANK)
    template = "Known:\n{memories}"
    async with with_memory(
        aclient(llm),
        brain,
        bank=BANK,
        position="before_last_user",
        template=template,
        max_chars=len("Known:\n") + len("- fact number 0 about zebras") + 5,
        retain=False,
    ) as client:
        history = [
            {"role": "system", "content": "sys"},
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"},
            {"role": "user", "content": "tell me about zebras"},
        ]
        await client.chat.completions.create(model="m", messages=history)
    sent = chat_messages(llm)[0]
    assert sent[:3] == history[:3]
    assert sent[4] == history[3]
    assert sent[3]["role"] == "system"
    # One whole line fits the budget, not two.
    assert sent[3]["content"].startswith("Known:\n- fact number ")
    assert sent[3]["content"].count("\n- ") == 1
    assert client.memory_stats.retains == 0


async def test_calls_without_a_user_message_are_passed_through(
    brain: Astrocyte, llm: OpenAICompatibleServer
) -> None:
    await brain.retain("something", BANK)
    async with with_memory(aclient(llm), brain, bank=BANK) as client:
        msgs = [{"role": "system", "content": "Say hi."}]
        await client.chat.completions.create(model="m", messages=msgs)
        await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "  \n"}]
        )
        stats = client.memory_stats
    assert chat_messages(llm) == [msgs, [{"role": "user", "content": "  \n"}]]
    assert (stats.recalls, stats.retains) == (0, 0)


async def test_recall_failure_fails_open_and_is_logged(
    brain: Astrocyte, llm: OpenAICompatibleServer, caplog: pytest.LogCaptureFixture
) -> None:
    # The query limit makes the real recall raise a ValidationError.
    strict = Astrocyte.from_config(fast_config(limits={"max_query_chars": 5}))
    async with strict, with_memory(aclient(llm), strict, bank=BANK, retain=False) as client:
        await strict.retain("a memory", BANK)
        with caplog.at_level(logging.WARNING, "astrocyte_llm_wrapper"):
            reply = await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "a long question"}]
            )
        assert reply.choices[0].message.content == "noted: a long question"
        assert client.memory_stats.recall_failures == 1
    assert chat_messages(llm) == [[{"role": "user", "content": "a long question"}]]
    assert "recall failed" in caplog.text
    # The user's text is never logged.
    assert "a long question" not in caplog.text


async def test_recall_timeout_fails_open_within_the_deadline(
    brain: Astrocyte, llm: OpenAICompatibleServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    await brain.retain("a memory", BANK)
    real_recall = brain.recall

    async def slow_recall(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(5)
        return await real_recall(*args, **kwargs)

    monkeypatch.setattr(brain, "recall", slow_recall)
    async with with_memory(
        aclient(llm), brain, bank=BANK, recall_timeout=0.2, retain=False
    ) as client:
        started = time.monotonic()
        await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "memory?"}]
        )
        assert time.monotonic() - started < 2
        assert client.memory_stats.recall_failures == 1
    assert chat_messages(llm) == [[{"role": "user", "content": "memory?"}]]


async def test_retain_runs_in_the_background_and_aclose_waits_for_it(
    brain: Astrocyte, llm: OpenAICompatibleServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_retain = brain.retain

    async def slow_retain(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0.5)
        return await real_retain(*args, **kwargs)

    monkeypatch.setattr(brain, "retain", slow_retain)
    client = with_memory(aclient(llm), brain, bank=BANK)
    started = time.monotonic()
    await client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "remember the pelican"}]
    )
    assert time.monotonic() - started < 0.5  # the caller did not wait for retain
    assert client.memory_stats.retains == 0
    await client.aclose()
    assert client.memory_stats.retains == 1
    assert any(t.startswith("user: remember the pelican") for t in await texts(brain, "pelican"))
    with pytest.raises(RuntimeError, match="closed"):
        await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])


async def test_retain_failure_never_reaches_the_caller(
    brain: Astrocyte, llm: OpenAICompatibleServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken_retain(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(brain, "retain", broken_retain)
    async with with_memory(aclient(llm), brain, bank=BANK) as client:
        reply = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hello"}]
        )
        assert reply.choices[0].message.content == "noted: hello"
        await client.flush()
        assert (client.memory_stats.retains, client.memory_stats.retain_failures) == (0, 1)


async def test_a_reply_without_text_is_not_retained(brain: Astrocyte) -> None:
    with OpenAICompatibleServer(chat_reply=lambda messages: None) as llm:
        async with with_memory(aclient(llm), brain, bank=BANK) as client:
            await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "call a tool"}]
            )
            assert client.memory_stats.retains_skipped == 1
    assert await brain.list_banks() == []


async def test_identity_context_is_applied_to_recall_and_retain(
    llm: OpenAICompatibleServer,
) -> None:
    config = fast_config(
        access_grants=[
            {"principals": ["user:*"], "banks": ["user-{id}"], "permissions": ["read", "write"]}
        ]
    )
    alice = AstrocyteContext(principal="user:alice")
    bob = AstrocyteContext(principal="user:bob")
    async with Astrocyte.from_config(config) as brain:
        await brain.retain("Alice keeps bees.", context=alice)  # default bank user-alice
        async with with_memory(aclient(llm), brain, context=alice) as client:
            await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "what about bees?"}]
            )
            # Bob's view of the same client: his own (empty) bank, nothing of Alice's.
            as_bob = client.scoped(context=bob)
            await as_bob.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "bees?"}]
            )
            # Bob may not touch Alice's bank: recall and retain are refused (fail open).
            intruder = client.scoped(context=bob, bank="user-alice")
            await intruder.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "steal bees"}]
            )
            await client.flush()
            stats = client.memory_stats
        sent = chat_messages(llm)
        assert sent[0][0] == {"role": "system", "content": TEMPLATE_HEAD + "- Alice keeps bees."}
        assert sent[1] == [{"role": "user", "content": "bees?"}]
        assert sent[2] == [{"role": "user", "content": "steal bees"}]
        assert (stats.recall_failures, stats.retains, stats.retain_failures) == (1, 2, 1)
        alice_texts = [h.text for h in (await brain.recall("bees", context=alice)).hits]
        bob_texts = [h.text for h in (await brain.recall("bees", context=bob)).hits]
    assert "user: what about bees?\nassistant: noted: what about bees?" in alice_texts
    assert not any("steal" in t for t in alice_texts)
    assert bob_texts == ["user: bees?\nassistant: noted: bees?"]


async def test_tenant_context_keeps_memories_in_the_tenant(llm: OpenAICompatibleServer) -> None:
    acme = AstrocyteContext(principal="user:carol", tenant="acme")
    async with Astrocyte.from_config(FAST) as brain:
        async with with_memory(aclient(llm), brain, bank=BANK, context=acme) as client:
            await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "tenant secret"}]
            )
        assert await texts(brain, "tenant secret", context=acme) != []
        # The same bank name outside the tenant holds nothing.
        with pytest.raises(Exception, match="does not exist"):
            await brain.recall("tenant secret", BANK)


async def test_everything_else_is_the_clients_own(
    brain: Astrocyte, llm: OpenAICompatibleServer
) -> None:
    async with with_memory(aclient(llm), brain, bank=BANK) as client:
        models = await client.models.list()
        assert [m.id for m in models.data] == ["test-model"]
        embedding = await client.embeddings.create(model="e", input="hi")
        assert len(embedding.data[0].embedding) == llm.embed_dim
        assert client.base_url == client.client.base_url
        # with_options gives a client that still has memory.
        tuned = client.with_options(timeout=5)
        assert isinstance(tuned, AsyncMemoryOpenAI)
        await brain.retain("Tuned clients remember too.", BANK)
        await tuned.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "tuned clients?"}]
        )
    assert chat_messages(llm)[0][0]["content"].startswith(TEMPLATE_HEAD + "- Tuned clients")


async def test_messages_from_a_generator_and_reply_objects(
    brain: Astrocyte, llm: OpenAICompatibleServer
) -> None:
    await brain.retain("Generators are fine.", BANK)
    async with with_memory(aclient(llm), brain, bank=BANK, retain=False) as client:
        first = await client.chat.completions.create(
            model="m", messages=iter([{"role": "user", "content": "first"}])
        )
        history: list[Any] = [
            {"role": "user", "content": "first"},
            first.choices[0].message,  # a ChatCompletionMessage object, as users append it
            {"role": "user", "content": "generators?"},
        ]
        await client.chat.completions.create(model="m", messages=history)
    sent = chat_messages(llm)
    assert sent[0][1] == {"role": "user", "content": "first"}
    assert sent[1][0]["role"] == "system"
    assert sent[1][2]["role"] == "assistant"


def test_construction_errors(sync_brain: Astrocyte, llm: OpenAICompatibleServer) -> None:
    with pytest.raises(ValueError, match="api_key"):
        with_memory(sclient(llm), sync_brain, api_key="k")
    with pytest.raises(ValueError, match="context"):
        with_memory(sclient(llm), "http://127.0.0.1:1", context=AstrocyteContext(principal="u"))
    with pytest.raises(ValueError, match="URL"):
        with_memory(sclient(llm), "ftp://x")
    with pytest.raises(TypeError, match="memory"):
        with_memory(sclient(llm), 42)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="client"):
        with_memory(object(), sync_brain)  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="max_results"):
        with_memory(sclient(llm), sync_brain, max_results=0)


# -- sync ----------------------------------------------------------------------------------


def test_sync_client_injects_and_retains_on_close(
    sync_brain: Astrocyte, llm: OpenAICompatibleServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    asyncio.run(sync_brain.retain("Bob plays the oboe.", BANK))
    real_retain = sync_brain.retain

    async def slow_retain(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0.5)
        return await real_retain(*args, **kwargs)

    monkeypatch.setattr(sync_brain, "retain", slow_retain)
    client = with_memory(sclient(llm), sync_brain, bank=BANK)
    assert isinstance(client, MemoryOpenAI)
    started = time.monotonic()
    reply = client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "Which instrument does Bob play?"}]
    )
    assert time.monotonic() - started < 0.5
    assert reply.choices[0].message.content == "noted: Which instrument does Bob play?"
    assert chat_messages(llm)[0][0] == {
        "role": "system",
        "content": TEMPLATE_HEAD + "- Bob plays the oboe.",
    }
    assert client.memory_stats.retains == 0
    client.close()  # flushes the worker
    assert client.memory_stats.retains == 1
    found = asyncio.run(texts(sync_brain, "instrument Bob", max_results=10))
    assert (
        "user: Which instrument does Bob play?\nassistant: noted: Which instrument does Bob play?"
        in found
    )


def test_sync_recall_timeout_fails_open(
    sync_brain: Astrocyte, llm: OpenAICompatibleServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def hung_recall(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(30)

    monkeypatch.setattr(sync_brain, "recall", hung_recall)
    with with_memory(
        sclient(llm), sync_brain, bank=BANK, recall_timeout=0.2, retain=False
    ) as client:
        started = time.monotonic()
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        assert time.monotonic() - started < 2
        assert client.memory_stats.recall_failures == 1
        assert client.models.list().data[0].id == "test-model"
    assert chat_messages(llm) == [[{"role": "user", "content": "hi"}]]


def test_sync_upstream_errors_reach_the_caller_and_nothing_is_retained(
    sync_brain: Astrocyte, llm: OpenAICompatibleServer
) -> None:
    llm.fail_next(1, 400, message="bad request", path="chat/completions")
    with with_memory(sclient(llm), sync_brain, bank=BANK) as client:
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "boom"}]
            )
        assert client.flush(5)
        assert client.memory_stats.retains == 0
    assert asyncio.run(sync_brain.list_banks()) == []
