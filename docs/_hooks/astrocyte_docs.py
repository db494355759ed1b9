"""MkDocs hooks of the Astrocyte documentation site (``hooks:`` in ``mkdocs.yml``).

What they do, in build order:

* ``on_config`` finds the package READMEs to publish and expands the ``*`` entries of
  ``nav`` (``adr/*``, ``packages/storage/*``) into the pages that exist and that the nav
  does not list by name elsewhere, so a new ADR or adapter package shows up without
  editing the nav; a section left empty is dropped.
* ``on_files`` adds the generated pages: the configuration reference (from the JSON
  Schema that ``python -m astrocyte.config.export`` writes), the gateway REST reference
  (from the gateway's committed ``openapi.json``), one page per package README and the
  changelog.
* ``on_page_markdown`` rewrites relative links that leave ``docs/`` (a docs page linking
  ``../astrocyte-py/astrocyte/recall/engine.py``, or a README linking its own
  ``examples/``): a README that has a page here links to that page, anything else in the
  repository to ``{repo_url}/blob/main/<path>`` (``tree/`` for a folder). The target must
  exist in this checkout; a missing one is a warning, so ``mkdocs build --strict`` fails.
  Links inside ``docs/`` are left to MkDocs' own ``validation`` (files and anchors).
"""

from __future__ import annotations

import fnmatch
import html
import json
import os
import posixpath
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.plugins import get_plugin_logger
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

log = get_plugin_logger("astrocyte_docs")

#: The gateway's committed OpenAPI document, relative to the repository root.
OPENAPI_PATH = "astrocyte-services-py/astrocyte-gateway-py/openapi.json"
CONFIG_REFERENCE_URI = "reference/configuration.md"
GATEWAY_API_URI = "gateway/api.md"
CHANGELOG_URI = "changelog.md"

#: Package folders whose READMEs become pages: (folder, site folder).
#: The folder's own README is ``<site folder>/index.md``; a README in a subfolder
#: ``astrocyte-pgvector`` is ``<site folder>/pgvector.md`` (the ``astrocyte-`` prefix and
#: ``ingestion-`` / ``integration-`` prefixes and a ``-py`` suffix dropped; deeper folders
#: keep their path).
README_ROOTS = (
    ("adapters-storage-py", "packages/storage"),
    ("adapters-ingestion-py", "packages/ingestion"),
    ("adapters-integration-py", "packages/integrations"),
    ("astrocyte-services-py", "packages/gateway"),
    ("gateway-plugins", "packages/gateway-plugins"),
)
#: Single READMEs published at a fixed place.
SINGLE_READMES = {"astrocyte-py/README.md": "packages/core.md", "CHANGELOG.md": CHANGELOG_URI}
_SKIP_DIRS = {"node_modules", "__pycache__", "dist", "build", "site"}


@dataclass
class _State:
    repo_root: Path
    repo_url: str
    docs_rel: str  # docs_dir relative to the repository root, posix ("docs")
    readme_pages: dict[str, str]  # README path in the repo -> src_uri of its page
    origins: dict[str, str]  # src_uri of a generated page -> file it came from (repo path)


_state: _State | None = None


def _st() -> _State:
    if _state is None:  # pragma: no cover - MkDocs always calls on_config first
        raise RuntimeError("astrocyte_docs: on_config has not run")
    return _state


# --------------------------------------------------------------------------- discovery


def _package_page(sub: str) -> str:
    parts = [
        p.removeprefix("astrocyte-").removeprefix("ingestion-").removeprefix("integration-")
        for p in sub.split("/")
    ]
    parts = [p.removesuffix("-py") for p in parts]
    return "/".join(parts) + ".md"


def discover_readmes(repo_root: Path) -> dict[str, str]:
    """Every published README (repo path, posix) -> the src_uri of its page."""
    pages: dict[str, str] = {}
    for folder, site in README_ROOTS:
        base = repo_root / folder
        if not base.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(
                d for d in dirnames if not d.startswith((".", "_")) and d not in _SKIP_DIRS
            )
            if "README.md" not in filenames:
                continue
            sub = Path(dirpath).relative_to(base).as_posix()
            readme = (Path(dirpath) / "README.md").relative_to(repo_root).as_posix()
            pages[readme] = f"{site}/index.md" if sub == "." else f"{site}/{_package_page(sub)}"
    for readme, uri in SINGLE_READMES.items():
        if (repo_root / readme).is_file():
            pages[readme] = uri
    return pages


def _docs_pages(docs_dir: Path) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(docs_dir):
        dirnames[:] = [d for d in dirnames if not d.startswith((".", "_"))]
        for name in filenames:
            if name.endswith(".md"):
                out.append((Path(dirpath) / name).relative_to(docs_dir).as_posix())
    return out


def _glob_order(uri: str) -> tuple[int, str]:
    return (0 if posixpath.basename(uri) == "index.md" else 1, uri)


def _explicit_pages(nav: Any) -> set[str]:
    if isinstance(nav, str):
        return set() if "*" in nav else {nav}
    if isinstance(nav, dict):
        return set().union(*(_explicit_pages(v) for v in nav.values()))
    if isinstance(nav, list):
        return set().union(*(_explicit_pages(v) for v in nav))
    return set()


def expand_nav(nav: list[Any], candidates: list[str]) -> list[Any]:
    """Replace ``*`` patterns by the matching pages (index first, then by path) that the
    nav does not name explicitly elsewhere; drop sections that end up empty."""
    explicit = _explicit_pages(nav)
    return _expand(nav, [c for c in candidates if c not in explicit])


def _matches(pattern: str, candidates: list[str]) -> list[str]:
    return sorted(fnmatch.filter(candidates, pattern), key=_glob_order)


def _expand(nav: list[Any], candidates: list[str]) -> list[Any]:
    out: list[Any] = []
    for item in nav:
        if isinstance(item, str) and "*" in item:
            out.extend(_matches(item, candidates))
        elif isinstance(item, dict):
            new: dict[str, Any] = {}
            for title, value in item.items():
                if isinstance(value, list):
                    value = _expand(value, candidates)
                    if not value:
                        continue
                elif isinstance(value, str) and "*" in value:
                    matches = _matches(value, candidates)
                    if not matches:
                        continue
                    value = matches[0] if len(matches) == 1 else matches
                new[title] = value
            if new:
                out.append(new)
        else:
            out.append(item)
    return out


# --------------------------------------------------------------------------- link rewriting

_FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
_INLINE_LINK = re.compile(
    r"(?P<head>!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*)"
    r"(?P<target><[^>]*>|[^)\s]+)"
    r"(?P<tail>(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\))"
)
_REF_DEF = re.compile(r"^(?P<head> {0,3}\[[^\]]+\]:\s*)(?P<target><[^>]*>|\S+)(?P<tail>.*)$")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def _code_spans(line: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in _CODE_SPAN.finditer(line)]


def rewrite_links(markdown: str, rewrite: Callable[[str, bool], str]) -> str:
    """Call ``rewrite(target, is_image)`` on every link target outside code; keep the rest."""

    def inline(text: str) -> str:
        spans = _code_spans(text)

        def sub(m: re.Match[str]) -> str:
            if any(start <= m.start() < end for start, end in spans):
                return m.group(0)  # inside inline code: not a link
            raw = m.group("target")
            bracketed = raw.startswith("<")
            target = raw[1:-1] if bracketed else raw
            new = rewrite(target, m.group("head").startswith("!"))
            if bracketed:
                new = f"<{new}>"
            return m.group("head") + new + m.group("tail")

        return _INLINE_LINK.sub(sub, text)

    lines = markdown.split("\n")
    fence: str | None = None
    for i, line in enumerate(lines):
        fm = _FENCE.match(line)
        if fence is not None:
            if fm and fm.group(2)[0] == fence[0] and len(fm.group(2)) >= len(fence):
                fence = None
            continue
        if fm:
            fence = fm.group(2)
            continue
        rm = _REF_DEF.match(line)
        if rm:
            raw = rm.group("target")
            target = raw[1:-1] if raw.startswith("<") else raw
            lines[i] = rm.group("head") + rewrite(target, False) + rm.group("tail")
            continue
        lines[i] = inline(line)
    return "\n".join(lines)


def _resolve_target(target: str, origin: str, page_uri: str, is_image: bool) -> str:
    """The link to write for ``target`` found in repo file ``origin`` shown as ``page_uri``."""
    st = _st()
    if not target or target.startswith(("#", "/")) or _SCHEME.match(target):
        return target
    path, sep, fragment = target.partition("#")
    path, qsep, query = path.partition("?")
    if not path:
        return target
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(origin), unquote(path)))
    if resolved == ".." or resolved.startswith("../"):
        log.warning("%s: link %r points outside the repository", origin, target)
        return target
    suffix = (qsep + query if qsep else "") + (sep + fragment if sep else "")
    page_dir = posixpath.dirname(page_uri) or "."

    docs_prefix = st.docs_rel + "/"
    if resolved.startswith(docs_prefix):
        if origin.startswith(docs_prefix):
            return target  # a docs page linking docs: MkDocs validates it
        return posixpath.relpath(resolved[len(docs_prefix) :], page_dir) + suffix
    readme_page = st.readme_pages.get(resolved) or st.readme_pages.get(f"{resolved}/README.md")
    if readme_page is not None and not is_image:  # the README (or its folder) has a page
        return posixpath.relpath(readme_page, page_dir) + suffix
    abs_path = st.repo_root / resolved
    if abs_path.is_file():
        kind = "raw" if is_image else "blob"
    elif abs_path.is_dir():
        kind = "tree"
    else:
        log.warning("%s: link %r: %s does not exist in the repository", origin, target, resolved)
        kind = "blob"
    return f"{st.repo_url}/{kind}/main/{resolved}{suffix}"


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    st = _st()
    uri = page.file.src_uri
    source = st.origins.get(uri)
    origin = f"{st.docs_rel}/{uri}"
    if source is not None:
        # A README keeps its own relative links; "Edit this page" edits the README. A
        # page generated from data (schema, OpenAPI) has nothing to edit.
        is_readme = source in st.readme_pages
        origin = source if is_readme else origin
        page.edit_url = f"{st.repo_url}/edit/main/{source}" if is_readme else None
    return rewrite_links(markdown, lambda t, img: _resolve_target(t, origin, uri, img))


# --------------------------------------------------------------------------- rendering helpers

_ROLE = re.compile(r":(?:[a-z]+:)?[a-z]+:`~?([^`]+)`")


def _md_text(text: str) -> str:
    """Schema prose as Markdown: Sphinx roles to code, ``<``/``>`` escaped outside code."""
    text = _ROLE.sub(r"`\1`", text)
    out, pos = [], 0
    for m in _CODE_SPAN.finditer(text):
        out.append(html.escape(text[pos : m.start()], quote=False))
        out.append(m.group(0))
        pos = m.end()
    out.append(html.escape(text[pos:], quote=False))
    return "".join(out)


def _cell(text: str) -> str:
    """One Markdown table cell: a single line, pipes escaped."""
    return " ".join(_md_text(text).split()).replace("|", "\\|")


def _code(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    ticks = "``" if "`" in text else "`"
    pad = " " if "`" in text else ""
    return f"{ticks}{pad}{text}{pad}{ticks}".replace("|", "\\|")


def _paragraphs(text: str) -> str:
    """A docstring-like description as Markdown paragraphs (``::`` blocks kept verbatim)."""
    return _md_text(text.strip())


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def type_str(schema: dict[str, Any], link: Callable[[str], str]) -> str:
    """A compact type: ``string``, ``integer | null``, ``list[RecallHit]``, ``map[Source]``."""
    if "$ref" in schema:
        name = _ref_name(schema["$ref"])
        return f"[{name}]({link(name)})"
    if "const" in schema:
        return f"{_code(schema['const'])} (constant)"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " \\| ".join(type_str(s, link) for s in schema[key])
    if "allOf" in schema and len(schema["allOf"]) == 1:
        return type_str(schema["allOf"][0], link)
    kind = schema.get("type")
    if isinstance(kind, list):
        return " \\| ".join(kind)
    if kind == "array":
        items = schema.get("items")
        return f"list[{type_str(items, link)}]" if items else "list"
    if kind == "object":
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and extra:
            return f"map[{type_str(extra, link)}]"
        return "object"
    if kind:
        fmt = schema.get("format")
        return f"{kind} ({fmt})" if fmt else str(kind)
    return "any"


_CONSTRAINTS = (
    ("minimum", "≥ {}"),
    ("exclusiveMinimum", "> {}"),
    ("maximum", "≤ {}"),
    ("exclusiveMaximum", "< {}"),
    ("minLength", "length ≥ {}"),
    ("maxLength", "length ≤ {}"),
    ("minItems", "at least {} item(s)"),
    ("maxItems", "at most {} item(s)"),
    ("pattern", "matches `{}`"),
)


def _walk_variants(schema: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield schema
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(key, []):
            yield from _walk_variants(sub)
    if isinstance(schema.get("items"), dict):
        yield from _walk_variants(schema["items"])


def constraints(schema: dict[str, Any]) -> str:
    """Enum values and numeric/length limits, as one sentence (empty when none)."""
    parts: list[str] = []
    for variant in _walk_variants(schema):
        if "enum" in variant:
            parts.append("One of: " + ", ".join(_code(v) for v in variant["enum"]) + ".")
        limits = [fmt.format(variant[key]) for key, fmt in _CONSTRAINTS if key in variant]
        if limits:
            parts.append(", ".join(limits).capitalize() + ".")
    return " ".join(dict.fromkeys(parts))


def field_rows(
    schema: dict[str, Any], link: Callable[[str], str], *, show_default: bool = True
) -> list[str]:
    """Table rows (Field | Type | Default/Required | Description) of an object schema."""
    required = set(schema.get("required", []))
    rows = []
    for name, prop in schema.get("properties", {}).items():
        desc = prop.get("description", "")
        more = constraints(prop)
        if desc and more and not desc.rstrip().endswith((".", ":", ";", "!", "?")):
            desc = desc.rstrip() + "."
        text = _cell(" ".join(x for x in (desc, more) if x))
        if name in required:
            default = "**required**"
        elif "default" in prop:
            default = _code(prop["default"])
        elif not show_default:
            default = "optional"
        elif prop.get("type") == "array":
            default = "`[]`"
        elif prop.get("type") == "object":
            default = "`{}`"
        else:
            default = "its defaults"  # a nested object built from its own defaults
        rows.append(f"| `{name}` | {type_str(prop, link)} | {default} | {text or '-'} |")
    return rows


def _table(rows: list[str], middle: str = "Default") -> list[str]:
    if not rows:
        return []
    return [f"| Field | Type | {middle} | Description |", "|---|---|---|---|", *rows, ""]


# --------------------------------------------------------------------------- config reference


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9_-]+", "-", name.lower()).strip("-")


def render_config_reference(schema: dict[str, Any]) -> str:
    """The configuration reference page from the JSON Schema of ``astrocyte.yaml``."""
    defs: dict[str, Any] = schema.get("$defs", {})

    def link(name: str) -> str:
        return f"#def-{_slug(name)}"

    out = [
        "# Configuration reference",
        "",
        "Every key of `astrocyte.yaml`, generated at build time from the same JSON Schema "
        "`python -m astrocyte.config.export` writes to "
        "[`docs/config.schema.json`](../config.schema.json) (so it cannot drift from "
        "the pydantic models). [Configuration](../configuration.md) explains loading, "
        "layering, profiles and `${ENV}` substitution; this page is the exhaustive list.",
        "",
        "Keys marked **required** must be given when their section is present; every "
        "other key has the default shown (*its defaults*: a nested object whose keys all "
        "take their defaults). Unknown keys are an error except in the options of a "
        "provider spec.",
        "",
        "## Top-level sections",
        "",
        "| Section | Type | Default | Description |",
        "|---|---|---|---|",
    ]
    props: dict[str, Any] = schema.get("properties", {})
    for name, prop in props.items():
        desc = prop.get("description") or _first_line(_def_of(prop, defs).get("description", ""))
        out.append(
            f"| [`{name}`](#{_slug(name)}) | {type_str(prop, link)} | "
            f"{_code(prop['default']) if 'default' in prop else 'see below'} | "
            f"{_cell(desc) or '-'} |"
        )
    out.append("")
    for name, prop in props.items():
        out += [f"## `{name}` {{#{_slug(name)}}}", ""]
        target = _def_of(prop, defs)
        desc = prop.get("description")
        if desc:
            out += [_paragraphs(desc), ""]
        elif target.get("description"):
            out += [_paragraphs(target["description"]), ""]
        out.append(f"**Type:** {type_str(prop, link)}")
        if "default" in prop:
            out.append(f"<br>**Default:** {_code(prop['default'])}")
        more = constraints(prop)
        if more:
            out.append(f"<br>{_md_text(more)}")
        out.append("")
        if target.get("properties"):
            kind = "each entry" if prop.get("type") in ("array", "object") else "the section"
            out += [f"Keys of {kind}:", "", *_table(field_rows(target, link))]
            if target.get("additionalProperties") is True:
                out += ["Other keys are allowed (passed through as options).", ""]
    out += [
        "## Definitions",
        "",
        "The object types the sections above refer to.",
        "",
    ]
    for name in sorted(defs):
        d = defs[name]
        out += [f"### {name} {{#def-{_slug(name)}}}", ""]
        if d.get("description"):
            out += [_paragraphs(d["description"]), ""]
        if d.get("properties"):
            out += _table(field_rows(d, link))
            if d.get("additionalProperties") is True:
                out += ["Other keys are allowed (passed through as options).", ""]
        else:
            out += [f"**Type:** {type_str(d, link)}"]
            more = constraints(d)
            if more:
                out.append(f"<br>{_md_text(more)}")
            out.append("")
    return "\n".join(out)


def _first_line(text: str) -> str:
    return text.strip().split("\n\n", 1)[0]


def _def_of(prop: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """The object definition a property is (or holds a list/map/optional of)."""
    for variant in _walk_variants(prop):
        ref = variant.get("$ref")
        if ref:
            return dict(defs.get(_ref_name(ref), {}))
        extra = variant.get("additionalProperties")
        if isinstance(extra, dict) and "$ref" in extra:
            return dict(defs.get(_ref_name(extra["$ref"]), {}))
    return {}


# --------------------------------------------------------------------------- gateway API


def _op_anchor(method: str, path: str) -> str:
    return re.sub(r"-{2,}", "-", _slug(f"{method}-{path}"))


def render_openapi(spec: dict[str, Any]) -> str:
    """The gateway REST reference: every operation, then every schema."""
    schemas: dict[str, Any] = spec.get("components", {}).get("schemas", {})
    security_schemes: dict[str, Any] = spec.get("components", {}).get("securitySchemes", {})
    info = spec.get("info", {})

    def link(name: str) -> str:
        return f"#schema-{_slug(name)}"

    def scheme_text(name: str) -> str:
        s = security_schemes.get(name, {})
        if s.get("type") == "apiKey":
            return f"API key in the `{s.get('name')}` {s.get('in', 'header')}"
        if s.get("type") == "http" and s.get("scheme") == "bearer":
            return "`Authorization: Bearer` token (API key or JWT)"
        return f"`{name}`"

    out = [
        "# Gateway REST API",
        "",
        f"{_md_text(info.get('title', 'API'))} {info.get('version', '')}, generated at build "
        f"time from the gateway's committed OpenAPI document "
        f"([`{OPENAPI_PATH}`](../../{OPENAPI_PATH})). "
        "The [gateway package](../../astrocyte-services-py/astrocyte-gateway-py/README.md) "
        "explains running and "
        "configuring it.",
        "",
        _paragraphs(info.get("description", "")),
        "",
        "## Operations",
        "",
        "| Method | Path | Summary | Auth |",
        "|---|---|---|---|",
    ]
    operations = []
    for path, item in spec.get("paths", {}).items():
        for method, op in item.items():
            if method.lower() not in {"get", "post", "put", "patch", "delete", "head"}:
                continue
            operations.append((path, method, op))
            auth = "yes" if op.get("security", spec.get("security")) else "none declared"
            out.append(
                f"| {method.upper()} | [`{path}`](#{_op_anchor(method, path)}) | "
                f"{_cell(op.get('summary', ''))} | {auth} |"
            )
    out.append("")
    for path, method, op in operations:
        out += [f"## {method.upper()} `{path}` {{#{_op_anchor(method, path)}}}", ""]
        if op.get("summary"):
            out += [
                f"**{_md_text(op['summary'])}**"
                + (f" (tag: {', '.join(op.get('tags', []))})" if op.get("tags") else ""),
                "",
            ]
        if op.get("description"):
            out += [_paragraphs(op["description"]), ""]
        security = op.get("security", spec.get("security"))
        if security:
            options = [" and ".join(scheme_text(n) for n in req) for req in security]
            out += ["**Auth:** " + ("; or ".join(options) if options else "none") + ".", ""]
        else:
            out += ["**Auth:** none declared in the spec (see the description).", ""]
        params = op.get("parameters", [])
        if params:
            out += ["**Parameters**", "", "| Name | In | Type | Required | Description |"]
            out.append("|---|---|---|---|---|")
            for p in params:
                out.append(
                    f"| `{p['name']}` | {p.get('in', '')} | "
                    f"{type_str(p.get('schema', {}), link)} | "
                    f"{'yes' if p.get('required') else 'no'} | "
                    f"{_cell(p.get('description', '')) or '-'} |"
                )
            out.append("")
        body = op.get("requestBody")
        if body:
            content = body.get("content", {})
            for media, media_obj in content.items():
                schema = media_obj.get("schema", {})
                req = "required" if body.get("required") else "optional"
                out += [f"**Request body** ({req}, `{media}`): {type_str(schema, link)}", ""]
                resolved = (
                    schemas.get(_ref_name(schema["$ref"]), {}) if "$ref" in schema else schema
                )
                if resolved.get("properties"):
                    out += _table(field_rows(resolved, link, show_default=False), "Required")
                elif schema.get("description") or resolved.get("description"):
                    out += [_paragraphs(schema.get("description") or resolved["description"]), ""]
        responses = op.get("responses", {})
        if responses:
            out += ["**Responses**", "", "| Status | Meaning | Body |", "|---|---|---|"]
            for code in sorted(responses, key=str):
                r = responses[code]
                bodies = [
                    type_str(m.get("schema", {}), link)
                    for m in r.get("content", {}).values()
                    if m.get("schema")
                ]
                out.append(
                    f"| {code} | {_cell(r.get('description', ''))} | {', '.join(bodies) or '-'} |"
                )
            out.append("")
            errors = sorted(c for c in responses if not str(c).startswith(("2", "3")))
            if errors:
                out += [f"**Error codes:** {', '.join(errors)}.", ""]
    out += ["## Schemas", "", "Request and response bodies referenced above.", ""]
    for name in sorted(schemas):
        s = schemas[name]
        out += [f"### {name} {{#schema-{_slug(name)}}}", ""]
        if s.get("description"):
            out += [_paragraphs(s["description"]), ""]
        if s.get("properties"):
            out += _table(field_rows(s, link, show_default=False), "Required")
        else:
            out += [f"**Type:** {type_str(s, link)}", ""]
    return "\n".join(out)


# --------------------------------------------------------------------------- hooks


def on_config(config: MkDocsConfig) -> MkDocsConfig:
    global _state
    repo_root = Path(config.config_file_path).resolve().parent
    docs_dir = Path(config.docs_dir).resolve()
    repo_url = (config.repo_url or "").rstrip("/")
    if not repo_url:
        raise ValueError("astrocyte_docs: mkdocs.yml must set repo_url")
    readmes = discover_readmes(repo_root)
    _state = _State(
        repo_root=repo_root,
        repo_url=repo_url,
        docs_rel=docs_dir.relative_to(repo_root).as_posix(),
        readme_pages=readmes,
        origins={},
    )
    candidates = _docs_pages(docs_dir) + list(readmes.values())
    candidates += [CONFIG_REFERENCE_URI, GATEWAY_API_URI]
    if config.nav:
        config.nav = expand_nav(config.nav, candidates)
    return config


def _title_of_readme(text: str, fallback: str) -> str:
    m = re.search(r"^# +(.+)$", text, re.M)
    return m.group(1).strip() if m else fallback


def on_files(files: Files, config: MkDocsConfig) -> Files:
    from astrocyte.config.export import config_json_schema

    st = _st()
    generated: dict[str, tuple[str, str]] = {
        CONFIG_REFERENCE_URI: (
            render_config_reference(config_json_schema()),
            "astrocyte-py/astrocyte/config/schema.py",
        ),
        GATEWAY_API_URI: (
            render_openapi(json.loads((st.repo_root / OPENAPI_PATH).read_text("utf-8"))),
            OPENAPI_PATH,
        ),
    }
    for readme, uri in st.readme_pages.items():
        text = (st.repo_root / readme).read_text("utf-8")
        if not re.search(r"^# ", text, re.M):
            text = f"# {_title_of_readme(text, readme)}\n\n{text}"
        generated[uri] = (text, readme)
    for uri, (content, origin) in generated.items():
        if files.get_file_from_path(uri) is not None:
            log.warning("generated page %s would replace docs/%s", uri, uri)
            continue
        files.append(File.generated(config, uri, content=content))
        st.origins[uri] = origin
    return files


def on_serve(server: Any, config: MkDocsConfig, builder: Any) -> Any:
    st = _st()
    for readme in st.readme_pages:
        server.watch(str(st.repo_root / readme))
    server.watch(str(st.repo_root / OPENAPI_PATH))
    server.watch(str(st.repo_root / "astrocyte-py" / "astrocyte"))
    return server
