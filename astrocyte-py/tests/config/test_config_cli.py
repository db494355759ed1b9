"""``astrocyte config validate | show | schema | profiles``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from astrocyte.cli.main import main
from astrocyte.config import load_config
from astrocyte.config.export import render_schema

SECRETS_YAML = """\
profile: support
llm:
  provider: openai
  model: gpt-4o-mini
  api_key: ${OPENAI_KEY}
storage:
  vector_store:
    provider: pgvector
    dsn: postgresql://app:hunter2@db:5432/mem
deployment:
  mode: standalone
gateway:
  auth:
    api_keys:
      - key: ${BOT_KEY}
        principal: agent:bot
sources:
  chat:
    type: proxy
    url: https://api.example.com/v1
    headers:
      Authorization: Bearer upstream-token
"""


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run the console entry point in-process: (exit status, stdout, stderr)."""
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def good(tmp_path: Path) -> Path:
    path = tmp_path / "astrocyte.yaml"
    path.write_text("profile: research\nembedder:\n  provider: hashing\n", encoding="utf-8")
    return path


@pytest.fixture
def secret_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OPENAI_KEY", "sk-live-abcdef")
    monkeypatch.setenv("BOT_KEY", "bot-key-0123456789abcdef")
    path = tmp_path / "secrets.yaml"
    path.write_text(SECRETS_YAML, encoding="utf-8")
    return path


def test_validate_ok(good: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["config", "validate", str(good)], capsys)
    assert code == 0, err
    assert out.startswith(f"ok: {good}")
    assert "profile: research" in out
    assert "embedder: hashing" in out


def test_validate_json(good: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["--json", "config", "validate", str(good)], capsys)
    assert code == 0
    payload = json.loads(out)
    assert payload["ok"] is True
    assert payload["summary"]["profile"] == "research"


def test_validate_uses_global_config_option(good: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["--config", str(good), "config", "validate"], capsys)
    assert code == 0
    assert out.startswith(f"ok: {good}")


def test_validate_zero_config(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["config", "validate"], capsys)
    assert code == 0
    assert out.startswith("ok: zero config (no file)")


def test_validate_error_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("recall:\n  rrf_kk: 3\n", encoding="utf-8")
    code, out, err = run(["config", "validate", str(bad)], capsys)
    assert code == 2
    assert out == ""
    assert err == "error: config recall.rrf_kk: unknown key (did you mean 'rrf_k'?)\n"


def test_validate_lists_every_problem(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("recall:\n  rrf_kk: 3\n  graph_dept: 1\n", encoding="utf-8")
    code, _, err = run(["config", "validate", str(bad)], capsys)
    assert code == 2
    lines = err.splitlines()
    assert lines[0] == "error: config recall.rrf_kk: unknown key (did you mean 'rrf_k'?)"
    assert lines[1] == "error: config recall.graph_dept: unknown key (did you mean 'graph_depth'?)"
    assert lines[2] == "2 problems"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("recall: [1\n", "is not valid YAML"),
        ("a: 1\na: 2\n", "duplicate key"),
        ("llm:\n  api_key: ${ASTRO_UNSET_FOR_TEST}\n", "config llm.api_key: environment variable"),
        ("compliance: hipaa\npolicy:\n  pii:\n    action: allow\n", "compliance 'hipaa'"),
    ],
)
def test_validate_other_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, fragment: str
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(text, encoding="utf-8")
    code, _, err = run(["config", "validate", str(bad)], capsys)
    assert code == 2
    assert err.startswith("error: config ")
    assert fragment in err


def test_validate_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["config", "validate", str(tmp_path / "nope.yaml")], capsys)
    assert code == 2
    assert "does not exist" in err


def test_show_masks_secrets(secret_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["config", "show", str(secret_config)], capsys)
    assert code == 0, err
    for secret in ("sk-live-abcdef", "bot-key-0123456789abcdef", "hunter2", "upstream-token"):
        assert secret not in out
    shown = yaml.safe_load(out)
    assert shown["llm"]["api_key"] == "***"
    assert shown["llm"]["model"] == "gpt-4o-mini"
    assert shown["gateway"]["auth"]["api_keys"] == [
        {"key": "***", "key_sha256": None, "principal": "agent:bot", "tenant": None}
    ]
    assert shown["storage"]["vector_store"]["dsn"] == "postgresql://app:***@db:5432/mem"
    assert shown["sources"]["chat"]["headers"] == {"Authorization": "***"}
    # The effective config: profile values merged in, defaults spelled out.
    assert shown["chunking"]["strategy"] == "paragraph"
    assert shown["recall"]["rrf_k"] == 60


def test_show_json(secret_config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["--json", "config", "show", str(secret_config)], capsys)
    assert code == 0
    shown = json.loads(out)
    assert shown["llm"]["api_key"] == "***"
    assert "sk-live-abcdef" not in out


def test_show_is_a_valid_config_again(good: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["config", "show", str(good)], capsys)
    assert code == 0
    assert load_config(yaml.safe_load(out)) == load_config(good)


def test_show_changed_and_db_override(good: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["--db", "/tmp/x.db", "config", "show", "--changed", str(good)], capsys)
    assert code == 0
    shown = yaml.safe_load(out)
    assert shown["profile"] == "research"
    assert shown["storage"] == {"path": "/tmp/x.db"}
    assert "limits" not in shown
    assert shown["chunking"]["strategy"] == "fixed"


def test_show_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("deployment: {mode: standalone}\n", encoding="utf-8")
    code, out, err = run(["config", "show", str(bad)], capsys)
    assert code == 2
    assert out == ""
    assert err.startswith("error: config gateway.auth.api_keys: ")


def test_schema_print_write_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["config", "schema"], capsys)
    assert code == 0
    assert out == render_schema()
    target = tmp_path / "s.json"
    code, _, err = run(["config", "schema", "--check", str(target)], capsys)
    assert code == 1
    assert "out of date" in err
    assert run(["config", "schema", "-o", str(target)], capsys)[0] == 0
    code, out, _ = run(["config", "schema", "--check", str(target)], capsys)
    assert code == 0
    assert "up to date" in out


def test_profiles(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["config", "profiles"], capsys)
    assert code == 0
    for name in ("personal", "support", "research", "edge", "gdpr", "hipaa"):
        assert name in out
    code, out, _ = run(["--json", "config", "profiles", "hipaa"], capsys)
    assert code == 0
    described = json.loads(out)
    assert described["kind"] == "compliance"
    assert any(lock["path"] == "policy.pii.action" for lock in described["locks"])
    code, out, _ = run(["config", "profiles", "research"], capsys)
    assert "strategy: fixed" in out
    code, _, err = run(["config", "profiles", "nope"], capsys)
    assert code == 2
    assert err.startswith("error: config profile: unknown profile 'nope'")


def test_console_script_exit_status(tmp_path: Path) -> None:
    """The installed `astrocyte` command, as a user runs it."""
    exe = str(Path(sys.executable).with_name("astrocyte"))
    bad = tmp_path / "astrocyte.yml"
    bad.write_text("chunking:\n  strategy: sentense\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASTROCYTE_")}
    done = subprocess.run(
        [exe, "config", "validate", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 2
    assert "did you mean 'sentence'?" in done.stderr
