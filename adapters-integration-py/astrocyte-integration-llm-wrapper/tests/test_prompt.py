"""The pure prompt logic: formatting, budgets, positions, and parity with the Lua core
of the API-gateway plugins (run under LuaJIT when it is installed)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from astrocyte_llm_wrapper import DEFAULT_TEMPLATE, MemoryOptions, format_memories
from astrocyte_llm_wrapper.prompt import (
    content_text,
    exchange_text,
    inject,
    insert_index,
    last_user_message,
    truncate_utf8,
)

HEAD = "Relevant memories from earlier conversations:\n"

# Characters that matter: ASCII and Unicode whitespace, multi-byte UTF-8 of every width.
TEXT = st.text(
    alphabet=st.sampled_from([*"ab cz.\t\n\r\x0b\x0c", "é", "中", "😀", "\u00a0", "\u2028"]),
    max_size=40,
)
TEMPLATES = st.sampled_from(
    [DEFAULT_TEMPLATE, "{memories}", "A{memories}B{memories}", "Memories ✓:\n{memories}\n--"]
)


def size(s: str) -> int:
    return len(s.encode())


# -- format_memories -------------------------------------------------------------------


def test_default_format_is_one_line_per_hit_in_order() -> None:
    message = format_memories(["Alice likes  teal.", "She\nlives in\tOslo.", "  ", "x"])
    assert message == HEAD + "- Alice likes teal.\n- She lives in Oslo.\n- x"


def test_no_hits_or_only_blank_hits_give_no_message() -> None:
    assert format_memories([]) is None
    assert format_memories([" \n\t", ""]) is None


def test_whole_lines_only_while_they_fit() -> None:
    budget = size(HEAD) + len("- aaaa\n- bbbb")
    message = format_memories(["aaaa", "bbbb", "cc"], max_chars=budget)
    assert message == HEAD + "- aaaa\n- bbbb"
    # One byte less: the second line no longer fits, and nothing is cut mid-list.
    assert format_memories(["aaaa", "bbbb", "cc"], max_chars=budget - 1) == HEAD + "- aaaa"


def test_a_first_hit_too_long_is_cut_with_an_ellipsis() -> None:
    message = format_memories(["é" * 50], template="{memories}", max_chars=12)
    # room 12: 9 bytes of "- ééé..." are "- " + 3×2-byte "é" + 1 spare byte, then "..."
    assert message == "- ééé..."
    assert format_memories(["long text"], template="{memories}", max_chars=5) is None


def test_max_tokens_is_four_bytes_each_and_the_smaller_budget_wins() -> None:
    hits = ["a" * 10, "b" * 10]
    assert format_memories(hits, template="{memories}", max_tokens=6) == "- aaaaaaaaaa"
    assert format_memories(hits, template="{memories}", max_tokens=100, max_chars=12) == (
        "- aaaaaaaaaa"
    )


def test_max_results_limits_lines_and_blank_hits_do_not_count() -> None:
    assert format_memories(["", "a", " ", "b", "c"], max_results=2) == HEAD + "- a\n- b"


def test_only_the_first_placeholder_is_filled() -> None:
    assert format_memories(["x"], template="<{memories}|{memories}>") == "<- x|{memories}>"


def test_a_template_longer_than_the_budget_gives_nothing() -> None:
    assert format_memories(["x"], max_chars=size(HEAD)) is None


@settings(max_examples=300, deadline=None)
@given(
    texts=st.lists(TEXT, max_size=8),
    template=TEMPLATES,
    max_chars=st.integers(1, 300),
    max_tokens=st.none() | st.integers(1, 80),
    max_results=st.integers(1, 6),
)
def test_format_properties(
    texts: list[str], template: str, max_chars: int, max_tokens: int | None, max_results: int
) -> None:
    message = format_memories(
        texts,
        template=template,
        max_chars=max_chars,
        max_tokens=max_tokens,
        max_results=max_results,
    )
    budget = max_chars if max_tokens is None else min(max_chars, 4 * max_tokens)
    if message is None:
        return
    assert size(message) <= budget
    head, _, tail = template.partition("{memories}")
    assert message.startswith(head)
    assert message.endswith(tail)
    lines = message[len(head) : len(message) - len(tail)].split("\n")
    assert 1 <= len(lines) <= max_results
    one_lined = [" ".join(w for w in _ascii_split(t) if w) for t in texts if any(_ascii_split(t))]
    for i, line in enumerate(lines):
        assert line.startswith("- ")
        if i == 0 and len(lines) == 1 and line[2:] != one_lined[0]:
            # The only line, cut to the budget.
            assert line.endswith("...")
            assert one_lined[0].startswith(line[2:-3])
        else:
            assert line[2:] == one_lined[i]


def _ascii_split(text: str) -> list[str]:
    out = text
    for ws in "\t\n\r\x0b\x0c":
        out = out.replace(ws, " ")
    return [w for w in out.split(" ") if w]


@settings(max_examples=300, deadline=None)
@given(text=st.text(st.characters(codec="utf-8"), max_size=30), n=st.integers(0, 60))
def test_truncate_utf8_keeps_whole_characters(text: str, n: int) -> None:
    raw = text.encode()
    cut = truncate_utf8(text, n)
    assert text.startswith(cut)
    assert size(cut) <= n or cut == text
    if cut != text:
        # Maximal: one more character would exceed the budget.
        assert size(text[: len(cut) + 1]) > n
        assert len(raw) > n


# -- messages ----------------------------------------------------------------------------


def test_last_user_message_reads_strings_parts_and_objects() -> None:
    msgs: list[Any] = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "first"},
        SimpleNamespace(role="assistant", content="ok"),
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "look"},
                {"type": "image_url", "image_url": {"url": "http://x"}},
                {"type": "text", "text": "here"},
            ],
        },
    ]
    assert last_user_message(msgs) == ("look\nhere", 3)
    assert last_user_message([SimpleNamespace(role="user", content="hi")]) == ("hi", 0)
    # The last user message counts even when blank: earlier ones are not used.
    assert (
        last_user_message([{"role": "user", "content": "a"}, {"role": "user", "content": " "}])
        is None
    )
    assert last_user_message([{"role": "system", "content": "x"}]) is None
    assert content_text([{"type": "image_url"}]) is None


ROLES = st.lists(st.sampled_from(["system", "user", "assistant", "tool"]), max_size=8)


@settings(max_examples=200, deadline=None)
@given(roles=ROLES, position=st.sampled_from(["first", "before_last_user"]))
def test_inject_inserts_one_system_message_and_leaves_the_input_alone(
    roles: list[str], position: Any
) -> None:
    messages = [{"role": r, "content": f"m{i}"} for i, r in enumerate(roles)]
    before = json.dumps(messages)
    out = inject(messages, "MEM", position)
    assert json.dumps(messages) == before
    assert len(out) == len(messages) + 1
    at = insert_index(messages, position)
    assert out[at] == {"role": "system", "content": "MEM"}
    assert out[:at] + out[at + 1 :] == messages
    users = [i for i, r in enumerate(roles) if r == "user"]
    if position == "before_last_user" and users:
        assert at == users[-1]
        assert out[at + 1]["role"] == "user"
    else:
        assert at == 0


def test_exchange_text() -> None:
    assert exchange_text("hi", "hello") == "user: hi\nassistant: hello"


# -- options -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("position", "last"),
        ("template", "no placeholder"),
        ("max_chars", 0),
        ("max_results", True),
        ("max_tokens", -1),
        ("max_query_chars", 1.5),
        ("recall_timeout", 0),
        ("retain_timeout", float("inf")),
        ("retain", "yes"),
        ("retain_tags", "tag"),
        ("retain_tags", ["ok", ""]),
    ],
)
def test_options_reject_bad_values(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field):
        MemoryOptions(**{field: value})


def test_options_defaults_match_the_gateway_plugins() -> None:
    opts = MemoryOptions(retain_tags=["a"])
    assert (opts.position, opts.template, opts.max_chars) == ("first", DEFAULT_TEMPLATE, 2000)
    assert (opts.max_results, opts.max_query_chars, opts.max_tokens) == (5, 2000, None)
    assert opts.retain_tags == ("a",)


# -- parity with the Lua core ------------------------------------------------------------

LUA_DIR = Path(__file__).resolve().parents[3] / "gateway-plugins" / "lua"
LUA_RUNNER = """
package.path = arg[1] .. "/?.lua;" .. package.path
local core = require("astrocyte_memory.core")
local cjson = require("cjson.safe")
local out = {}
for line in io.lines() do
  local case = cjson.decode(line)
  local hits = {}
  for i, t in ipairs(case.texts) do hits[i] = { text = t } end
  local msg = core.format_memories(core.with_defaults(case.conf), hits)
  out[#out + 1] = msg == nil and cjson.null or msg
end
io.write(cjson.encode(out))
"""


def _lua() -> str:
    luajit = shutil.which("luajit") or shutil.which("lua5.1")
    if luajit is None or not (LUA_DIR / "astrocyte_memory" / "core.lua").exists():
        pytest.skip("needs luajit and gateway-plugins/lua (the monorepo checkout)")
    probe = subprocess.run(
        [luajit, "-e", 'require("cjson.safe")'], capture_output=True, check=False
    )
    if probe.returncode != 0:
        pytest.skip("needs lua-cjson")
    return luajit


CASE = st.fixed_dictionaries(
    {
        "texts": st.lists(TEXT, max_size=7),
        "template": TEMPLATES,
        "max_chars": st.integers(1, 250),
        "max_tokens": st.none() | st.integers(1, 70),
        "max_results": st.integers(1, 6),
    }
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(cases=st.lists(CASE, min_size=1, max_size=40))
def test_same_system_message_as_the_lua_plugins(cases: list[dict[str, Any]]) -> None:
    luajit = _lua()
    lines = []
    for case in cases:
        conf = {k: case[k] for k in ("template", "max_chars", "max_results")}
        if case["max_tokens"] is not None:
            conf["max_tokens"] = case["max_tokens"]
        lines.append(json.dumps({"texts": case["texts"], "conf": conf}, ensure_ascii=False))
    proc = subprocess.run(
        [luajit, "-e", LUA_RUNNER.replace("arg[1]", json.dumps(str(LUA_DIR)))],
        input="\n".join(lines).encode(),
        capture_output=True,
        check=True,
    )
    lua = json.loads(proc.stdout.decode())
    ours = [
        format_memories(
            c["texts"],
            template=c["template"],
            max_chars=c["max_chars"],
            max_tokens=c["max_tokens"],
            max_results=c["max_results"],
        )
        for c in cases
    ]
    assert ours == lua
