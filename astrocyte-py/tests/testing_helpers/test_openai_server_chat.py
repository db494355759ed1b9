"""The local OpenAI-compatible server's chat endpoint, driven by the real ``openai``
client: scripted tool calls and streamed replies must look like OpenAI's, or framework
tests built on the server would test against the wrong shapes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from astrocyte.testing.openai_server import OpenAICompatibleServer, tool_call_message

openai = pytest.importorskip("openai")


def _script(messages: list[dict[str, Any]]) -> Any:
    """First turn: call ``recall``; after the tool answered: reply with its result."""
    if messages[-1]["role"] == "tool":
        return f"You said: {messages[-1]['content']}"
    return tool_call_message("recall", {"query": "tea"}, call_id="call_7")


def test_tool_call_round_trip() -> None:
    with OpenAICompatibleServer(chat_reply=_script) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="k")
        first = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "what do I drink?"}]
        )
        choice = first.choices[0]
        assert choice.finish_reason == "tool_calls"
        assert choice.message.content is None
        (call,) = choice.message.tool_calls or []
        assert call.id == "call_7"
        assert call.function.name == "recall"
        assert json.loads(call.function.arguments) == {"query": "tea"}
        second = client.chat.completions.create(
            model="m",
            messages=[
                {"role": "user", "content": "what do I drink?"},
                choice.message.model_dump(exclude_none=True),
                {"role": "tool", "tool_call_id": "call_7", "content": "tea"},
            ],
        )
        assert second.choices[0].finish_reason == "stop"
        assert second.choices[0].message.content == "You said: tea"


@settings(max_examples=20, deadline=None)
@given(reply=st.text(alphabet=st.characters(codec="utf-8"), max_size=60))
def test_streamed_text_reassembles_exactly(reply: str) -> None:
    with OpenAICompatibleServer(chat_reply=reply) as srv:
        client = openai.OpenAI(base_url=srv.base_url, api_key="k")
        stream = client.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == reply
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    assert chunks[-1].usage is not None and not chunks[-1].choices


async def test_streamed_tool_call_reassembles() -> None:
    args = {"query": "what does alice drink?", "limit": 3}
    async with OpenAICompatibleServer(
        chat_reply=lambda _m: tool_call_message("recall", args)
    ) as srv:
        client = openai.AsyncOpenAI(base_url=srv.base_url, api_key="k")
        stream = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "q"}], stream=True
        )
        name, arguments, call_id, finish = "", "", None, None
        async for chunk in stream:
            assert chunk.usage is None  # not asked for
            delta = chunk.choices[0].delta
            for call in delta.tool_calls or ():
                call_id = call.id or call_id
                name += (call.function.name or "") if call.function else ""
                arguments += (call.function.arguments or "") if call.function else ""
            finish = chunk.choices[0].finish_reason or finish
    assert (call_id, name, finish) == ("call_recall", "recall", "tool_calls")
    assert json.loads(arguments) == args
    assert srv.requests_to("/v1/chat/completions")[0].json["stream"] is True
