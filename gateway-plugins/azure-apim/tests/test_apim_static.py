"""Static checks of the policy XML and of the deployment files (no Mono needed).

Element/section/attribute rules below are from the APIM policy reference for the policies
the fragments use; the few marked "house rule" are stricter on purpose."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from apim_policy import (
    FRAGMENTS_DIR,
    PLUGIN_DIR,
    POLICY_FILE,
    Expression,
    PolicyFile,
    PolicySyntaxError,
    all_policy_files,
    extract_expressions,
    fragment_files,
    load_policy,
)

SECTIONS = ("inbound", "backend", "outbound", "on-error")
ALL = frozenset(SECTIONS)

#: policy element -> sections it may appear in
ALLOWED_SECTIONS: dict[str, frozenset[str]] = {
    "base": ALL,
    "choose": ALL,
    "set-variable": ALL,
    "set-header": ALL,
    "set-body": frozenset({"inbound", "backend", "outbound"}),
    "send-request": ALL,
    "send-one-way-request": ALL,
    "trace": ALL,
    "include-fragment": ALL,
    "forward-request": frozenset({"backend"}),
}

#: element -> (children allowed, in this order; required attributes)
REQUEST_CHILDREN = ["set-url", "set-method", "set-header", "set-body"]
REQUIRED_ATTRIBUTES: dict[str, set[str]] = {
    # house rule: mode, timeout and ignore-error explicit (the defaults are 60 s, no ignore)
    "send-request": {"mode", "response-variable-name", "timeout", "ignore-error"},
    "send-one-way-request": {"mode", "timeout"},  # house rule
    "set-variable": {"name", "value"},
    "set-header": {"name"},
    "include-fragment": {"fragment-id"},
    "when": {"condition"},
    "trace": {"source"},
}
#: attributes whose value APIM takes literally (expressions are not allowed there)
NO_EXPRESSIONS = {
    ("set-variable", "name"),
    ("include-fragment", "fragment-id"),
    ("send-request", "ignore-error"),
    ("trace", "source"),
    ("trace", "severity"),
}
ENUMS = {
    ("send-request", "ignore-error"): {"true", "false"},
    ("send-request", "mode"): {"new", "copy"},
    ("send-one-way-request", "mode"): {"new", "copy"},
    ("set-header", "exists-action"): {"override", "skip", "append", "delete"},
    ("trace", "severity"): {"verbose", "information", "error"},
}

#: .NET types the fragments may name (APIM's allowed list, as far as they use it), plus the
#: context model's own types.
ALLOWED_TYPES = {
    "Convert",
    "Exception",
    "Formatting",
    "JArray",
    "JObject",
    "JToken",
    "JTokenType",
    "JValue",
    "List",
    "Math",
    "Regex",
    "StringBuilder",
    "StringComparison",
    "IResponse",
}


@pytest.fixture(scope="module")
def policies() -> dict[str, PolicyFile]:
    return {p.name: load_policy(p) for p in all_policy_files()}


@pytest.fixture(scope="module")
def fragments() -> dict[str, PolicyFile]:
    return {fid: load_policy(p) for fid, p in fragment_files().items()}


def code_only(code: str) -> str:
    """The C# with string/char literals emptied and comments removed."""
    out: list[str] = []
    i = 0
    while i < len(code):
        c = code[i]
        if code.startswith("//", i):
            i = code.find("\n", i) if "\n" in code[i:] else len(code)
        elif code.startswith('@"', i):
            j = i + 2
            while j < len(code) and not (code[j] == '"' and code[j + 1 : j + 2] != '"'):
                j += 2 if code[j] == '"' else 1
            out.append('""')
            i = j + 1
        elif c in "\"'":
            j = i + 1
            while j < len(code) and code[j] != c:
                j += 2 if code[j] == "\\" else 1
            out.append(c * 2)
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def all_expressions(policies: dict[str, PolicyFile]) -> list[tuple[PolicyFile, Expression]]:
    return [(p, e) for p in policies.values() for e in p.expressions.values()]


# -- reading the XML -----------------------------------------------------------------------


def test_the_files_are_not_xml_until_expressions_are_cut() -> None:
    import xml.etree.ElementTree as ET

    with pytest.raises(ET.ParseError):
        ET.fromstring((FRAGMENTS_DIR / "astrocyte-recall.xml").read_text())


def test_every_file_parses_with_placeholders(policies: dict[str, PolicyFile]) -> None:
    assert set(policies) == {"astrocyte-recall.xml", "astrocyte-retain.xml", POLICY_FILE.name}
    counts = {name: len(p.expressions) for name, p in policies.items()}
    assert counts["astrocyte-recall.xml"] > 10 and counts["astrocyte-retain.xml"] > 5
    for policy in policies.values():
        for token in policy.expressions:
            assert token in policy.templated


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ('<a v="@(x(")") + \')\')" />', "x(\")\") + ')'"),
        ('<a>@{ return @"a "" ) }"; }</a>', ' return @"a "" ) }"; '),
        ("<a>@{ /* } */ return 1; // }\n }</a>", " /* } */ return 1; // }\n "),
        ("<!-- @(not.an.expression --><a>@(1)</a>", "1"),
    ],
)
def test_the_expression_reader_follows_csharp_lexing(text: str, code: str) -> None:
    _, found = extract_expressions(text, "t.xml", "t")
    assert [e.code for e in found.values()] == [code]


@pytest.mark.parametrize("text", ['<a v="@(x(" />', "<a>@{ return '}</a>", '<a>@($"{x}")</a>'])
def test_the_expression_reader_rejects_what_it_cannot_read(text: str) -> None:
    with pytest.raises(PolicySyntaxError):
        extract_expressions(text, "t.xml", "t")


# -- structure -----------------------------------------------------------------------------


def test_fragments_follow_the_fragment_rules(fragments: dict[str, PolicyFile]) -> None:
    assert set(fragments) == {"astrocyte-recall", "astrocyte-retain"}
    for fragment in fragments.values():
        assert fragment.root.tag == "fragment"
        names = {el.tag for el in fragment.root.iter() if isinstance(el.tag, str)}
        # No section identifiers, no <base/>, no nested fragments; 32 KB at most.
        assert not names & {*SECTIONS, "base", "include-fragment", "policies"}, names
        assert len(fragment.raw.encode("utf-8")) <= 32 * 1024


def test_the_api_policy_has_the_four_sections_and_includes_both_fragments(
    policies: dict[str, PolicyFile], fragments: dict[str, PolicyFile]
) -> None:
    root = policies[POLICY_FILE.name].root
    assert root.tag == "policies"
    assert [child.tag for child in root] == list(SECTIONS)
    includes = {
        (section.tag, el.get("fragment-id"))
        for section in root
        for el in section.iter("include-fragment")
    }
    assert includes == {("inbound", "astrocyte-recall"), ("outbound", "astrocyte-retain")}
    assert {fid for _, fid in includes} <= set(fragments)


def _walk(el: Any, section: str, fragments: dict[str, PolicyFile], problems: list[str]) -> None:
    """Check every policy statement under ``el`` as executed in ``section``."""
    for child in el:
        if not isinstance(child.tag, str):
            continue
        tag = child.tag
        if tag not in ALLOWED_SECTIONS:
            problems.append(f"<{tag}> is not a policy this plugin may use")
            continue
        if section not in ALLOWED_SECTIONS[tag]:
            problems.append(f"<{tag}> is not allowed in <{section}>")
        if tag == "include-fragment":
            fragment = fragments.get(child.get("fragment-id", ""))
            if fragment is None:
                problems.append(f"unknown fragment {child.get('fragment-id')!r}")
            else:
                _walk(fragment.root, section, fragments, problems)
        elif tag == "choose":
            branches = [b.tag for b in child]
            if not branches or branches[0] != "when" or "otherwise" in branches[:-1]:
                problems.append(f"<choose> branches out of order: {branches}")
            for branch in child:
                if branch.tag not in ("when", "otherwise"):
                    problems.append(f"<{branch.tag}> directly in <choose>")
                _walk(branch, section, fragments, problems)
        elif tag in ("send-request", "send-one-way-request"):
            order = [REQUEST_CHILDREN.index(c.tag) for c in child if c.tag in REQUEST_CHILDREN]
            if order != sorted(order) or any(c.tag not in REQUEST_CHILDREN for c in child):
                problems.append(f"<{tag}> children: {[c.tag for c in child]}")
            if child.get("mode") == "new" and not {"set-url", "set-method"} <= {
                c.tag for c in child
            }:
                problems.append(f"<{tag} mode='new'> needs set-url and set-method")


def test_every_element_is_allowed_in_the_section_it_runs_in(
    policies: dict[str, PolicyFile], fragments: dict[str, PolicyFile]
) -> None:
    problems: list[str] = []
    for section in policies[POLICY_FILE.name].root:
        _walk(section, section.tag, fragments, problems)
    assert problems == []


def test_required_attributes_and_literal_values(policies: dict[str, PolicyFile]) -> None:
    problems: list[str] = []
    for policy in policies.values():
        for el in policy.root.iter():
            if not isinstance(el.tag, str):
                continue
            for attr in REQUIRED_ATTRIBUTES.get(el.tag, set()) - set(el.attrib):
                problems.append(f"{policy.path.name}: <{el.tag}> lacks {attr}")
            for attr, value in el.attrib.items():
                is_expr = policy.expression(value) is not None
                if is_expr and (el.tag, attr) in NO_EXPRESSIONS:
                    problems.append(
                        f"{policy.path.name}: <{el.tag} {attr}> cannot be an expression"
                    )
                allowed = ENUMS.get((el.tag, attr))
                if allowed and not is_expr and value not in allowed:
                    problems.append(f"{policy.path.name}: <{el.tag} {attr}={value!r}>")
                if attr == "timeout" and not is_expr and not (value.isdigit() and int(value) >= 1):
                    problems.append(
                        f"{policy.path.name}: timeout {value!r} is not whole seconds >= 1"
                    )
            if el.tag == "when" and policy.expression(el.get("condition")) is None:
                problems.append(f"{policy.path.name}: <when> condition is not an expression")
            if el.tag in ("set-url", "set-method", "set-body") and not (el.text or "").strip():
                problems.append(f"{policy.path.name}: empty <{el.tag}>")
            if el.tag == "set-method" and policy.expression(el.text) is not None:
                problems.append(f"{policy.path.name}: <set-method> cannot be an expression")
            if el.tag == "trace" and el.find("message") is None:
                problems.append(f"{policy.path.name}: <trace> without <message>")
    assert problems == []


def test_expressions_fill_whole_values(policies: dict[str, PolicyFile]) -> None:
    for policy in policies.values():
        for el in policy.root.iter():
            values = [*el.attrib.values(), el.text or "", el.tail or ""]
            for value in values:
                for token in re.findall(r"__apim_expr_\d+__", value):
                    assert value.strip() == token, f"{policy.path.name}: {value!r}"


# -- the expressions -----------------------------------------------------------------------


def test_expressions_stay_inside_what_apim_accepts(policies: dict[str, PolicyFile]) -> None:
    problems: list[str] = []
    for _, expr in all_expressions(policies):
        where = f"{expr.source}:{expr.line}"
        # APIM replaces {{name}} everywhere, inside expressions too: never by accident.
        if "{{" in expr.code or "}}" in expr.code:
            problems.append(f"{where}: '{{{{' or '}}}}' in an expression")
        # A naive scanner must find the same end as a lexer (strings included).
        for open_, close in ("()", "{}"):
            if expr.code.count(open_) != expr.code.count(close):
                problems.append(f"{where}: unbalanced {open_}{close} (even inside literals)")
        code = code_only(expr.code)
        names = set(re.findall(r"(?<![\w.])([A-Z]\w*)\s*(?:\.|<|\()", code))
        names |= set(re.findall(r"\bnew\s+([A-Z]\w*)", code))
        names |= set(re.findall(r"\(([A-Z]\w*)\)\s*\w", code))  # casts
        unknown = names - ALLOWED_TYPES
        if unknown:
            problems.append(f"{where}: types outside the allowed list: {sorted(unknown)}")
        if expr.kind == "{" and "return" not in expr.code:
            problems.append(f"{where}: a statement block must return")
    assert problems == []


def test_inbound_expressions_do_not_read_the_response(fragments: dict[str, PolicyFile]) -> None:
    for expr in fragments["astrocyte-recall"].expressions.values():
        assert "context.Response" not in expr.code, f"{expr.source}:{expr.line}"


def test_the_request_body_is_only_read_with_preserve_content(
    policies: dict[str, PolicyFile],
) -> None:
    for _, expr in all_expressions(policies):
        for call in re.findall(r"Body\.As<\w+>\(([^)]*)\)", expr.code):
            assert call == "preserveContent: true", f"{expr.source}:{expr.line}"


# -- deployment files ----------------------------------------------------------------------


DEPLOY = PLUGIN_DIR / "deploy"
APIOPS = PLUGIN_DIR / "apiops"


def referenced_named_values(policies: dict[str, PolicyFile]) -> set[str]:
    return set().union(*(p.named_values() for p in policies.values()))


def bicep_resources(kind: str) -> list[str]:
    """Bodies of the Bicep resources of ``kind`` (e.g. service/namedValues)."""
    text = (DEPLOY / "main.bicep").read_text()
    pattern = rf"resource \w+ 'Microsoft\.ApiManagement/{re.escape(kind)}@[\w-]+' = \{{(.*?)\n\}}"
    return re.findall(pattern, text, flags=re.S)


def _unquote(value: Any) -> Any:
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def terraform(name: str) -> dict[str, Any]:
    import hcl2

    with open(DEPLOY / name) as f:
        return hcl2.load(f)


def tf_resources(kind: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for block in terraform("main.tf").get("resource", []):
        for rkind, items in block.items():
            if _unquote(rkind) == kind:
                for name, body in items.items():
                    found[_unquote(name)] = {k: _unquote(v) for k, v in body.items()}
    return found


def test_referenced_named_values(policies: dict[str, PolicyFile]) -> None:
    assert referenced_named_values(policies) == {
        "astrocyte-url",
        "astrocyte-api-key",
        "astrocyte-bank",
    }


def test_bicep_declares_named_values_fragments_and_policy(policies: dict[str, PolicyFile]) -> None:
    named = {}
    for body in bicep_resources("service/namedValues"):
        name = re.search(r"name: '([^']+)'", body).group(1)
        named[name] = "secret: true" in body
        assert re.search(rf"displayName: '{name}'", body)
    assert set(named) == referenced_named_values(policies)
    assert named == {"astrocyte-url": False, "astrocyte-api-key": True, "astrocyte-bank": False}

    fragments = {}
    for body in bicep_resources("service/policyFragments"):
        name = re.search(r"name: '([^']+)'", body).group(1)
        assert "format: 'rawxml'" in body
        fragments[name] = re.search(r"loadTextContent\('([^']+)'\)", body).group(1)
    assert fragments == {fid: f"../fragments/{fid}.xml" for fid in fragment_files()}
    for path in fragments.values():
        assert (DEPLOY / path).resolve().is_file()

    (policy,) = bicep_resources("service/apis/policies")
    assert "format: 'rawxml'" in policy
    assert "loadTextContent('../policies/chat-api-policy.xml')" in policy
    assert "@secure()\n@description('API key" in (DEPLOY / "main.bicep").read_text()


def test_terraform_declares_named_values_fragments_and_policy(
    policies: dict[str, PolicyFile],
) -> None:
    named = tf_resources("azurerm_api_management_named_value")
    assert {body["name"] for body in named.values()} == referenced_named_values(policies)
    secrets = {body["name"]: body["secret"] for body in named.values()}
    assert secrets == {"astrocyte-url": False, "astrocyte-api-key": True, "astrocyte-bank": False}

    fragments = tf_resources("azurerm_api_management_policy_fragment")
    assert {body["name"] for body in fragments.values()} == set(fragment_files())
    for body in fragments.values():
        assert body["format"] == "rawxml"
        assert f"/../fragments/{body['name']}.xml" in body["value"]

    (policy,) = tf_resources("azurerm_api_management_api_policy").values()
    assert "/../policies/chat-api-policy.xml" in policy["xml_content"]
    assert len(tf_resources("azurerm_api_management_api_operation")) == 2

    declared = {_unquote(k) for block in terraform("variables.tf")["variable"] for k in block}
    used = set(re.findall(r"var\.(\w+)", (DEPLOY / "main.tf").read_text()))
    used |= set(re.findall(r"var\.(\w+)", (DEPLOY / "outputs.tf").read_text()))
    assert used <= declared and declared <= used
    variables = {
        _unquote(k): v for b in terraform("variables.tf")["variable"] for k, v in b.items()
    }
    assert variables["astrocyte_api_key"]["sensitive"] is True


def test_apiops_artifacts_match_the_sources(policies: dict[str, PolicyFile]) -> None:
    artifacts = APIOPS / "artifacts"
    for fid, path in fragment_files().items():
        folder = artifacts / "policy fragments" / fid
        assert (folder / "policy.xml").read_bytes() == path.read_bytes(), f"{fid} copy is stale"
        info = json.loads((folder / "policyFragmentInformation.json").read_text())
        assert info["properties"]["description"]
    api = artifacts / "apis" / "astrocyte-chat"
    assert (api / "policy.xml").read_bytes() == POLICY_FILE.read_bytes()
    assert json.loads((api / "apiInformation.json").read_text())["properties"]["path"] == "llm"
    spec = yaml.safe_load((api / "specification.yaml").read_text())
    assert {op["operationId"] for item in spec["paths"].values() for op in item.values()} == {
        "chat-completions",
        "list-models",
    }

    named = {
        p.parent.name: json.loads(p.read_text())["properties"]
        for p in (artifacts / "named values").glob("*/namedValueInformation.json")
    }
    assert set(named) == referenced_named_values(policies)
    assert (
        named["astrocyte-api-key"]["secret"] is True and "value" not in named["astrocyte-api-key"]
    )

    config = yaml.safe_load((APIOPS / "configuration.prod.yaml").read_text())
    overridden = {item["name"]: item["properties"] for item in config["namedValues"]}
    assert set(overridden) == set(named)
    assert overridden["astrocyte-api-key"]["secret"] is True


def test_readme_documents_every_setting(fragments: dict[str, PolicyFile]) -> None:
    text = (PLUGIN_DIR / "README.md").read_text()
    variables: set[str] = set()
    for fragment in fragments.values():
        for expr in fragment.expressions.values():
            variables |= set(
                re.findall(r'GetValueOrDefault<\w+>\("(astrocyte-[a-z-]+)"', expr.code)
            )
    settings = variables - {
        # set and read by the fragments themselves
        "astrocyte-user-text",
        "astrocyte-bank",
        "astrocyte-caller-authorization",
        "astrocyte-recall-body",
        "astrocyte-recall-response",
        "astrocyte-recall-error",
        "astrocyte-memories",
        "astrocyte-reply",
        "astrocyte-retain-body",
    }
    assert len(settings) >= 12
    missing = sorted(s for s in settings if f"`{s}`" not in text)
    assert missing == []


def test_policy_files_are_tidy() -> None:
    for path in [*all_policy_files(), *sorted(APIOPS.rglob("*.json"))]:
        text = path.read_text(encoding="utf-8")
        assert text.endswith("\n") and not text.endswith("\n\n"), path
        assert "\t" not in text and all(line == line.rstrip() for line in text.splitlines()), path


def test_no_file_is_left_out(policies: dict[str, PolicyFile]) -> None:
    xml = {p.relative_to(PLUGIN_DIR) for p in PLUGIN_DIR.rglob("*.xml") if "apiops" not in p.parts}
    assert xml == {Path(p.path).relative_to(PLUGIN_DIR) for p in policies.values()}
