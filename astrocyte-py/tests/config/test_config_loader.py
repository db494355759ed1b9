"""Reading files: YAML/JSON, astrocyte.yml, directories, duplicate keys, no implicit
discovery; masking; suggestions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from astrocyte.config import AstrocyteConfig, find_config_file, load_config, mask_secrets
from astrocyte.config.suggest import closest, hint
from astrocyte.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_yaml_yml_and_json_files(tmp_path: Path) -> None:
    text = "recall:\n  rrf_k: 7\n"
    assert load_config(write(tmp_path / "astrocyte.yaml", text)).recall.rrf_k == 7
    assert load_config(write(tmp_path / "astrocyte.yml", text)).recall.rrf_k == 7
    assert (
        load_config(str(write(tmp_path / "c.json", '{"recall": {"rrf_k": 8}}'))).recall.rrf_k == 8
    )


def test_empty_file_is_zero_config(tmp_path: Path) -> None:
    assert load_config(write(tmp_path / "astrocyte.yaml", "# nothing yet\n")) == AstrocyteConfig()


def test_directory_finds_yaml_or_yml(tmp_path: Path) -> None:
    write(tmp_path / "astrocyte.yml", "recall: {rrf_k: 9}\n")
    assert load_config(tmp_path).recall.rrf_k == 9
    write(tmp_path / "astrocyte.yaml", "recall: {rrf_k: 10}\n")
    with pytest.raises(ConfigError, match=r"has both astrocyte\.yaml and astrocyte\.yml"):
        load_config(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match=r"has no astrocyte\.yaml or astrocyte\.yml"):
        load_config(empty)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_invalid_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "astrocyte.yaml", "recall:\n  rrf_k: [1\n")
    with pytest.raises(ConfigError, match="is not valid YAML") as caught:
        load_config(path)
    assert "astrocyte.yaml" in str(caught.value)
    assert "line" in str(caught.value)


def test_duplicate_keys_are_errors(tmp_path: Path) -> None:
    path = write(tmp_path / "astrocyte.yaml", "recall:\n  rrf_k: 1\nchunking: {}\nrecall: {}\n")
    with pytest.raises(ConfigError, match=r"duplicate key \(lines 1 and 4") as caught:
        load_config(path)
    assert caught.value.key == "recall"


def test_relative_rules_path_is_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "conf").mkdir()
    write(tmp_path / "conf" / "rules.md", "policy beats chat\n")
    path = write(
        tmp_path / "conf" / "astrocyte.yaml",
        "recall_authority:\n  tiers: [policy, chat]\n  rules_path: rules.md\n",
    )
    monkeypatch.chdir(tmp_path)  # somewhere else than the config file
    config = load_config(path)
    assert config.recall_authority.rules_path == str(tmp_path / "conf" / "rules.md")


def test_no_implicit_discovery(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A stray (even broken) astrocyte.yaml in the working directory and a set
    # ASTROCYTE_CONFIG change nothing for the library: no argument means zero config.
    write(tmp_path / "astrocyte.yaml", "recall: {rrf_kk: 1}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ASTROCYTE_CONFIG", str(tmp_path / "astrocyte.yaml"))
    assert load_config() == AstrocyteConfig()


def test_find_config_file_is_opt_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert find_config_file(tmp_path, env={}) is None
    write(tmp_path / "astrocyte.yml", "")
    assert find_config_file(tmp_path, env={}) == tmp_path / "astrocyte.yml"
    assert find_config_file(tmp_path, env={"ASTROCYTE_CONFIG": "/etc/a.yaml"}) == Path(
        "/etc/a.yaml"
    )
    monkeypatch.chdir(tmp_path)
    assert find_config_file(env={}) == tmp_path / "astrocyte.yml"


def test_config_object_is_returned_as_is() -> None:
    config = load_config({"recall": {"rrf_k": 3}})
    assert load_config(config) is config


# --- masking --------------------------------------------------------------------------


def test_mask_secrets_by_key_and_in_text() -> None:
    dumped = {
        "llm": {"provider": "openai", "api_key": "sk-1", "api_key_env": "OPENAI_API_KEY"},
        "gateway": {
            "auth": {
                "secret": "s" * 40,
                "api_keys": [{"key": "k" * 20, "principal": "agent:a"}],
                "issuer": "https://login.example.com",
            }
        },
        "storage": {
            "vector_store": {"provider": "pgvector", "dsn": "postgresql://app:hunter2@db:5432/x"},
            "graph_store": {"provider": "neo4j", "uri": "bolt://neo4j@graph", "password": "pw"},
            "document_store": {"provider": "es", "dsn": "host=db user=app password=hunter2"},
        },
        "sources": {
            "s": {
                "secret": "w" * 20,
                "headers": {"Authorization": "Bearer t", "X-Trace": "keep"},
                "url": "https://u:p@api.example.com/v1?api_key=abc&x=1",
                "options": {"access_token": "t", "topic": "tickets"},
            }
        },
        "recall": {"default_max_tokens": 100},
        "empty": {"token": "", "password": None},
    }
    masked = mask_secrets(dumped)
    text = json.dumps(masked)
    for secret in ("sk-1", "s" * 40, "k" * 20, "hunter2", '"pw"', "Bearer t", "w" * 20, "abc"):
        assert secret not in text, secret
    assert masked["llm"]["api_key_env"] == "OPENAI_API_KEY"
    assert masked["gateway"]["auth"]["api_keys"][0]["principal"] == "agent:a"
    assert masked["storage"]["vector_store"]["dsn"] == "postgresql://app:***@db:5432/x"
    assert masked["storage"]["graph_store"]["uri"] == "bolt://neo4j@graph"
    assert masked["sources"]["s"]["headers"]["X-Trace"] == "keep"
    assert masked["sources"]["s"]["url"] == "https://u:***@api.example.com/v1?api_key=***&x=1"
    assert masked["sources"]["s"]["options"]["topic"] == "tickets"
    assert masked["recall"]["default_max_tokens"] == 100
    assert masked["empty"] == {"token": "", "password": None}
    assert dumped["llm"]["api_key"] == "sk-1"  # the input is not modified


# --- suggestions ----------------------------------------------------------------------


def test_suggestions() -> None:
    assert closest("rrf_kk", ["rrf_k", "weights"]) == "rrf_k"
    assert closest("RRF_K", ["rrf_k"]) == "rrf_k"
    assert closest("zzz", ["rrf_k"]) is None
    assert hint("semantc", ["semantic", "keyword"]) == " (did you mean 'semantic'?)"
    assert hint("zzz", ["b", "a"]) == " (valid: a, b)"
    assert hint("zzz", ["a"], listing=False) == ""
