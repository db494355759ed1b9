"""atomic-agents-stack: a real ``AtomicAgent`` (scaffolded by its own ``init``) whose notes
live in Astrocyte through AstrocyteMemoryBackend.

atomic-agents ships no fake model, so its LLM is its own ``OpenAICompatibleLLMBackend``
pointed at our loopback ``OpenAICompatibleServer``: the agent's real call path (prompt
assembly, the ``atomic_capture`` tool, capture extraction, ``write_note``) runs end to end.
The package's protocol conformance tests are not shipped in its wheel, so the protocol
is checked here with ``isinstance`` against its ``runtime_checkable`` protocol and by
exercising each member."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("atomic_agents")

from atomic_agents.agent import AtomicAgent
from atomic_agents.exceptions import (
    MemoryPreconditionFailed,
    SchemaValidationError,
    VersionNotFound,
    WritePathViolation,
)
from atomic_agents.llm import register_llm_backend, unregister_llm_backend
from atomic_agents.llm.openai_compat import KeySpec, OpenAICompatibleLLMBackend
from atomic_agents.memory.backend import MemoryBackend, WritePolicy
from atomic_agents.types import Capture
from hypothesis import given, settings
from hypothesis import strategies as st

from astrocyte import AccessDenied, Astrocyte, AstrocyteContext
from astrocyte.integrations.atomic_agents import NOTE_FIELD, AstrocyteMemoryBackend
from astrocyte.integrations.common import run_sync
from astrocyte.testing.openai_server import OpenAICompatibleServer

CONFIG: dict[str, Any] = {"storage": {"backend": "memory"}, "embedder": {"provider": "hashing"}}
GRANTS: dict[str, Any] = {
    "access_grants": [
        {"principals": ["agent:advisor"], "banks": ["agents:tester"], "permissions": ["admin"]},
        {"principals": ["user:eve"], "banks": ["agents:tester"], "permissions": ["read"]},
    ]
}
MODEL = "astrocyte-local-test"


def _brain(config: dict[str, Any]) -> Astrocyte:
    # Built here, used only through run_sync's loop (the backend is synchronous).
    return Astrocyte.from_config(config)


@pytest.fixture(scope="module")
def agents_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("agents")
    env = {**os.environ, "HOME": str(root)}
    subprocess.run(
        [sys.executable, "-m", "atomic_agents.cli", "init", "tester", "--from-template",
         "advisor", "--agents-root", str(root)],
        check=False, capture_output=True, env=env, stdin=subprocess.DEVNULL, timeout=60,
    )  # fmt: skip
    model_md = root / "tester" / "model.md"
    assert model_md.exists()
    text = model_md.read_text()
    model_md.write_text(text.replace("claude-opus-4-8", MODEL).replace("claude-sonnet-4-6", MODEL))
    return root


CAPTURE = {
    "type": "user",
    "name": "tea preference",
    "description": "The user drinks green tea every morning",
    "confidence": "high",
    "sources": ["conversation"],
    "body": "The user said they drink green tea every morning, never coffee.",
    "tags": ["drinks"],
}


@pytest.fixture
def llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[OpenAICompatibleServer]:
    def reply(messages: list[dict[str, Any]]) -> Any:
        # The agent offers no tools to an OpenAI-family model without custom tools, so
        # the reply uses atomic-agents' text path: a fenced ``atomic_capture`` block.
        if "drink" in str(messages[-1].get("content")):
            return f"Noted.\n```atomic_capture\n{json.dumps(CAPTURE)}\n```"
        return "Hello."

    with OpenAICompatibleServer(chat_reply=reply) as srv:
        monkeypatch.setenv("ASTROCYTE_TEST_LLM_KEY", "k")
        register_llm_backend(
            OpenAICompatibleLLMBackend(
                provider_id="astrocyte-test",
                key_spec=KeySpec(("ASTROCYTE_TEST_LLM_KEY",), "none", "none"),
                model_namespace=lambda m: m == MODEL,
                base_url=srv.base_url,
            )
        )
        yield srv
        unregister_llm_backend("astrocyte-test")


def test_agent_writes_and_loads_its_notes_through_astrocyte(
    agents_root: Path, llm: OpenAICompatibleServer
) -> None:
    brain = _brain({**CONFIG, **GRANTS})
    advisor = AstrocyteContext(principal="agent:advisor")
    backend = AstrocyteMemoryBackend(
        brain, "agents:tester", context=advisor, agent_root=agents_root / "tester"
    )
    assert isinstance(backend, MemoryBackend)
    agent = AtomicAgent("tester", agents_root=agents_root, memory_backend=backend)
    response = agent.call("I drink green tea every morning.")
    assert [c.name for c in response.captures] == ["tea preference"]

    # The capture is a note in the bank, with its fields and tags.
    hits = run_sync(brain.recall("green tea", "agents:tester", context=advisor)).hits
    assert hits and hits[0].provenance.metadata[NOTE_FIELD] == "user_tea_preference.md"
    assert "drinks" in hits[0].provenance.tags
    note = backend.read_note("user_tea_preference.md")
    assert note is not None and note.body == CAPTURE["body"]
    assert [r.name for r in backend.search("what does the user drink?")] == [
        "user_tea_preference.md"
    ]

    # A second call loads it back into the prompt (index + recent notes).
    before = len(llm.requests)
    AtomicAgent("tester", agents_root=agents_root, memory_backend=backend).call("Hi")
    chat = [r for r in llm.requests[before:] if r.path.endswith("/chat/completions")]
    prompt = json.dumps(chat[0].json["messages"])
    assert "Hi" in prompt
    assert "user_tea_preference.md" in prompt
    assert "never coffee" in prompt

    # Identity: eve may read the bank but not write into it.
    eve = AstrocyteMemoryBackend(
        brain, "agents:tester", context=AstrocyteContext(principal="user:eve")
    )
    assert [r.name for r in eve.list_notes()] == ["user_tea_preference.md"]
    policy = WritePolicy(write_paths=[agents_root])
    with pytest.raises(AccessDenied):
        eve.write_note(Capture(**{**CAPTURE, "name": "other"}), policy)
    stranger = AstrocyteMemoryBackend(
        brain, "agents:tester", context=AstrocyteContext(principal="user:mallory")
    )
    with pytest.raises(AccessDenied):
        stranger.read_note("user_tea_preference.md")


@functools.cache
def _plain() -> Astrocyte:
    return _brain(CONFIG)


def _capture(**over: Any) -> Capture:
    return Capture(**{**CAPTURE, **over})


def test_protocol_members(tmp_path: Path) -> None:
    backend = AstrocyteMemoryBackend(_plain(), "proto", agent_root=tmp_path)
    ok = WritePolicy(write_paths=[tmp_path])
    assert backend.supports_semantic_search and not backend.supports_canonical_export
    assert backend.list_notes() == [] and backend.read_note("x.md") is None
    assert "(no notes)" in backend.render_index_summary()

    ref = backend.write_note(_capture(pinned=True), ok)
    assert ref.name == "user_tea_preference.md" and ref.pinned
    # Case 3: same content again returns the note; case 4: different content is refused.
    assert backend.write_note(_capture(pinned=True), ok).name == ref.name
    with pytest.raises(SchemaValidationError):
        backend.write_note(_capture(body="changed"), ok)
    # Case 1: merge refreshes sources, keeps the body.
    merged = backend.write_note(_capture(name="x", merge_into=ref.name, sources=["chat-2"]), ok)
    note = backend.read_note(ref.name)
    assert merged.name == ref.name and note is not None
    assert note.sources == ["conversation", "chat-2"] and note.body == CAPTURE["body"]
    with pytest.raises(SchemaValidationError):
        backend.write_note(_capture(merge_into="missing.md"), ok)
    with pytest.raises(MemoryPreconditionFailed):
        backend.write_note(_capture(merge_into=ref.name), ok, expected_content_sha256="0" * 64)

    # Policy: outside write_paths, under read_only_paths, or empty -> refused.
    with pytest.raises(WritePathViolation):
        backend.write_note(_capture(name="b"), WritePolicy(write_paths=[tmp_path / "elsewhere"]))
    with pytest.raises(WritePathViolation):
        backend.write_note(_capture(name="b"), WritePolicy([tmp_path], [tmp_path]))
    with pytest.raises(WritePathViolation):
        backend.write_note(_capture(name="b"), WritePolicy(write_paths=[]))

    # Listings.
    backend.write_note(_capture(type="project", name="launch", body="Launch in May."), ok)
    assert [r.name for r in backend.list_pinned()] == [ref.name]
    assert [r.name for r in backend.list_recent(5)] == ["project_launch.md"]
    assert [r.name for r in backend.list_by_type("project")] == ["project_launch.md"]
    assert backend.list_stale(0) == [] and backend.list_orphans() == []
    assert "## User" in backend.render_index_summary()
    assert "## Project" in backend.render_index_summary()

    # Versions: two earlier states of the tea note (first write, same-content rewrite).
    versions = backend.list_versions(ref.name)
    assert len(versions) == backend.version_count(ref.name) == 2
    oldest = backend.read_version(versions[-1])
    assert oldest.sources == ["conversation"]
    assert backend.resolve_version_token(ref.name, str(versions[-1])) == versions[-1]
    with pytest.raises(VersionNotFound):
        backend.resolve_version_token(ref.name, "nope")
    restored = backend.restore_version(ref.name, versions[-1], ok)
    assert restored.name == ref.name
    live = backend.read_note(ref.name)
    assert live is not None and live.sources == ["conversation"]
    backend.redact_version(versions[0])
    assert backend.read_version(versions[0]).body == "[REDACTED]"
    assert backend.read_note(ref.name) is not None
    assert backend.last_mutation_at(ref.name) is not None
    stats = backend.stats()
    assert stats.total_notes == 2 and stats.by_type == {"user": 1, "project": 1}
    assert stats.most_churned[0][0] == ref.name

    with pytest.raises(NotImplementedError):
        backend.create_staging()
    backend.close()


@settings(max_examples=15, deadline=None)
@given(
    name=st.text("abcdefghij klm-_", min_size=1, max_size=20).filter(
        lambda s: any(c.isalpha() for c in s)
    ),
    body=st.text(min_size=1, max_size=300).filter(lambda s: s.strip()),
    tags=st.lists(st.sampled_from(["a", "b", "c"]), unique=True, max_size=3),
)
def test_any_note_round_trips(name: str, body: str, tags: list[str]) -> None:
    backend = AstrocyteMemoryBackend(_plain(), f"hyp-{uuid.uuid4().hex}")  # fresh bank
    ok = WritePolicy(write_paths=[Path("/")])
    ref = backend.write_note(_capture(name=name, body=body, tags=tags), ok)
    note = backend.read_note(ref.name)
    assert note is not None
    assert (note.name, note.body, note.tags) == (name, body, tags)
