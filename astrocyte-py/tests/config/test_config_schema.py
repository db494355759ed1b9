"""The committed JSON Schema matches the models; the documented examples are valid."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import get_args

import pytest
import yaml
from conftest import AnyEnv
from pydantic import BaseModel

from astrocyte.config import AstrocyteConfig, load_config
from astrocyte.config.export import config_json_schema, main, render_schema
from astrocyte.config.profiles import COMPLIANCE_PROFILES, NAMED_PROFILES

DOCS = Path(__file__).resolve().parents[3] / "docs"
SCHEMA_FILE = DOCS / "config.schema.json"


def test_committed_schema_matches_the_models() -> None:
    committed = SCHEMA_FILE.read_text(encoding="utf-8")
    assert committed == render_schema(), (
        "docs/config.schema.json is out of date; regenerate it with "
        "`python -m astrocyte.config.export` (from astrocyte-py/)"
    )


def test_schema_describes_every_section_strictly() -> None:
    schema = config_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == set(AstrocyteConfig.model_fields)
    for name, definition in schema["$defs"].items():
        if definition.get("type") == "object" and name != "ProviderSpec":
            assert definition.get("additionalProperties") is False, name
    assert schema["properties"]["compliance"]["anyOf"][0]["enum"] == list(COMPLIANCE_PROFILES)
    for name in NAMED_PROFILES:
        assert name in schema["properties"]["profile"]["description"]


def test_export_check_and_write(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "schema.json"
    assert main([str(target), "--check"]) == 1
    assert "out of date" in capsys.readouterr().err
    assert main([str(target)]) == 0
    assert json.loads(target.read_text(encoding="utf-8")) == config_json_schema()
    assert main([str(target), "--check"]) == 0


def _yaml_blocks(markdown: str) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", markdown, flags=re.DOTALL)


def test_every_yaml_example_in_the_docs_is_a_valid_config(tmp_path: Path) -> None:
    blocks = _yaml_blocks((DOCS / "configuration.md").read_text(encoding="utf-8"))
    assert len(blocks) >= 5
    # Examples may point at a rules file next to the config.
    (tmp_path / "authority-rules.md").write_text("policy beats chat\n", encoding="utf-8")
    for i, block in enumerate(blocks):
        if block.lstrip().startswith("# invalid"):
            continue  # examples of errors
        path = tmp_path / f"example{i}.yaml"
        path.write_text(block, encoding="utf-8")
        assert isinstance(yaml.safe_load(block) or {}, dict)
        load_config(path, env=AnyEnv())


def test_documented_error_examples_fail() -> None:
    blocks = _yaml_blocks((DOCS / "configuration.md").read_text(encoding="utf-8"))
    invalid = [b for b in blocks if b.lstrip().startswith("# invalid")]
    assert invalid
    for block in invalid:
        with pytest.raises(Exception, match="config "):
            load_config(yaml.safe_load(block), env=AnyEnv())


def _fields(model: type[BaseModel], prefix: str = "") -> list[str]:
    out: list[str] = []
    for name, field in model.model_fields.items():
        out.append(prefix + name)
        for tp in [field.annotation, *get_args(field.annotation)]:
            for inner in [tp, *get_args(tp)]:
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    out.extend(_fields(inner, f"{prefix}{name}."))
    return out


# Sections documented in full here; identity and policy sections are summarised here and
# documented by their own layers (docs/identity.md, docs/policy.md).
_SUMMARISED = ("access_grants", "identity", "agents", "policy")


def test_reference_documents_every_key() -> None:
    doc = (DOCS / "configuration.md").read_text(encoding="utf-8")
    # Inline code only: fenced examples do not count as documentation of a key.
    prose = re.sub(r"```.*?```", "", doc, flags=re.DOTALL)
    spans = " ".join(re.findall(r"`([^`]+)`", prose))
    missing = [
        path
        for path in _fields(AstrocyteConfig)
        if not path.startswith(_SUMMARISED)
        and not re.search(rf"(?<![\w]){re.escape(path.rsplit('.', 1)[-1])}(?![\w])", spans)
    ]
    assert not missing, f"undocumented in docs/configuration.md: {missing}"
    for section in _SUMMARISED:
        assert f"`{section}" in doc or f"### {section}" in doc or section in doc
