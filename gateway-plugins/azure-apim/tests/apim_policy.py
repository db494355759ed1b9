"""Read APIM policy XML the way the gateway does, for the static checks and the emulator.

A policy written in APIM's ``rawxml`` format is not well-formed XML: C# policy expressions
(``@(...)`` single expressions and ``@{...}`` statement blocks) sit unescaped in attribute
values and element text, with their ``"``, ``<`` and ``&&``. :func:`load_policy` cuts every
expression out (with a small C# lexer, so parentheses and braces inside string and char
literals or comments do not end it), puts a placeholder token in its place, keeps a map
token -> :class:`Expression` and then parses the rest as XML. :func:`generate_csharp` turns
the expressions into one static C# method each, with ``#line`` directives so that compiler
errors point at the XML file and line.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

PLUGIN_DIR = Path(__file__).resolve().parent.parent
FRAGMENTS_DIR = PLUGIN_DIR / "fragments"
POLICY_FILE = PLUGIN_DIR / "policies" / "chat-api-policy.xml"

TOKEN_RE = re.compile(r"__apim_expr_(\d+)__")
NAMED_VALUE_RE = re.compile(r"\{\{([^{}]+)\}\}")


class PolicySyntaxError(ValueError):
    """The policy text cannot be read (unterminated expression, bad XML...)."""


@dataclass(frozen=True)
class Expression:
    """One policy expression as written in the XML."""

    method: str
    """Name of the generated C# method, e.g. ``astrocyte_recall_3``."""
    kind: str
    """``"("`` for ``@(expression)``, ``"{"`` for ``@{statements}``."""
    code: str
    """The C# between the delimiters."""
    source: str
    """File name the expression comes from."""
    line: int
    """1-based line of the ``@`` in that file."""

    @property
    def text(self) -> str:
        close = ")" if self.kind == "(" else "}"
        return f"@{self.kind}{self.code}{close}"


@dataclass
class PolicyFile:
    """A parsed policy or fragment: its XML tree with placeholders, and the expressions."""

    path: Path
    raw: str
    templated: str
    """The text with every expression replaced by its placeholder token."""
    root: ET.Element
    expressions: dict[str, Expression]
    """Placeholder token -> expression."""

    def expression(self, value: str | None) -> Expression | None:
        """The expression a whole attribute/text value stands for, if it is one."""
        if value is None:
            return None
        return self.expressions.get(value.strip())

    def named_values(self) -> set[str]:
        """Named values (``{{name}}``) the file refers to outside expressions."""
        text = TOKEN_RE.sub("", self.without_comments())
        return {m.strip() for m in NAMED_VALUE_RE.findall(text)}

    def without_comments(self) -> str:
        return re.sub(r"<!--.*?-->", "", self.templated, flags=re.S)


def _skip_string(text: str, i: int, verbatim: bool) -> int:
    """Index just past the C# string literal whose opening quote is at ``i``."""
    j = i + 1
    while j < len(text):
        c = text[j]
        if verbatim:
            if c == '"':
                if j + 1 < len(text) and text[j + 1] == '"':
                    j += 2
                    continue
                return j + 1
        else:
            if c == "\\":
                j += 2
                continue
            if c == '"':
                return j + 1
            if c == "\n":
                break
        j += 1
    raise PolicySyntaxError(f"unterminated string literal at offset {i}")


def _scan_expression(text: str, start: int) -> int:
    """Given ``text[start:start+2]`` == ``@(`` or ``@{``, the index of the closing delimiter."""
    opener = text[start + 1]
    closer = ")" if opener == "(" else "}"
    depth = 0
    i = start + 1
    while i < len(text):
        c = text[i]
        if c == "$" and i + 1 < len(text) and text[i + 1] in '"@':
            raise PolicySyntaxError("interpolated strings are not supported by this reader")
        if c == "@" and i + 1 < len(text) and text[i + 1] == '"':
            i = _skip_string(text, i + 1, verbatim=True)
            continue
        if c == '"':
            i = _skip_string(text, i, verbatim=False)
            continue
        if c == "'":
            j = i + 1
            if j < len(text) and text[j] == "\\":
                j += 1
            j += 1
            if j >= len(text) or text[j] != "'":
                raise PolicySyntaxError(f"bad char literal at offset {i}")
            i = j + 1
            continue
        if text.startswith("//", i):
            i = text.index("\n", i) if "\n" in text[i:] else len(text)
            continue
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise PolicySyntaxError(f"unterminated comment at offset {i}")
            i = end + 2
            continue
        if c == opener:
            depth += 1
        elif c == closer:
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise PolicySyntaxError(f"unterminated expression starting at offset {start}")


def extract_expressions(text: str, source: str, prefix: str) -> tuple[str, dict[str, Expression]]:
    """Replace every ``@(...)``/``@{...}`` outside XML comments with a placeholder token."""
    out: list[str] = []
    found: dict[str, Expression] = {}
    i = 0
    while i < len(text):
        if text.startswith("<!--", i):
            end = text.find("-->", i)
            if end < 0:
                raise PolicySyntaxError(f"{source}: unterminated XML comment")
            out.append(text[i : end + 3])
            i = end + 3
            continue
        if text[i] == "@" and i + 1 < len(text) and text[i + 1] in "({":
            end = _scan_expression(text, i)
            n = len(found)
            token = f"__apim_expr_{n}__"
            found[token] = Expression(
                method=f"{prefix}_{n}",
                kind=text[i + 1],
                code=text[i + 2 : end],
                source=source,
                line=text.count("\n", 0, i) + 1,
            )
            out.append(token)
            i = end + 1
            continue
        out.append(text[i])
        i += 1
    return "".join(out), found


def load_policy(path: Path) -> PolicyFile:
    return load_policy_text(path.read_text(encoding="utf-8"), path.name, path)


def load_policy_text(raw: str, name: str, path: Path | None = None) -> PolicyFile:
    """Parse policy text; ``name`` (a file name) also names its C# methods."""
    prefix = re.sub(r"\W", "_", Path(name).stem)
    templated, expressions = extract_expressions(raw, name, prefix)
    try:
        root = ET.fromstring(templated)
    except ET.ParseError as e:
        raise PolicySyntaxError(f"{name}: not well-formed once expressions are cut: {e}") from e
    return PolicyFile(
        path=path or Path(name), raw=raw, templated=templated, root=root, expressions=expressions
    )


def fragment_files() -> dict[str, Path]:
    """Fragment id (file stem) -> path, for every fragment the plugin ships."""
    return {p.stem: p for p in sorted(FRAGMENTS_DIR.glob("*.xml"))}


def all_policy_files() -> list[Path]:
    return [*fragment_files().values(), POLICY_FILE]


CSHARP_USINGS = """\
using System;
using System.Collections.Generic;
using System.Linq;
using System.Text;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using Newtonsoft.Json;
using Newtonsoft.Json.Linq;
using ApimStub;
"""


def generate_csharp(policies: list[PolicyFile]) -> str:
    """One ``public static object <method>(IProxyRequestContext context)`` per expression."""
    methods: list[str] = []
    for policy in policies:
        for expr in policy.expressions.values():
            methods.append(f"        // {expr.source}:{expr.line}")
            methods.append(
                f"        public static object {expr.method}(IProxyRequestContext context)"
            )
            methods.append("        {")
            # The code starts 2 characters after the '@' on the same line.
            methods.append(f'#line {expr.line} "{expr.source}"')
            if expr.kind == "(":
                methods.append(f"            return ({expr.code});")
            else:
                methods.append(expr.code)
            methods.append("#line default")
            methods.append("        }")
            methods.append("")
    body = "\n".join(methods)
    return (
        f"// Generated from the policy XML by tests/apim_policy.py; do not edit.\n"
        f"{CSHARP_USINGS}\n"
        f"namespace ApimExpressions\n{{\n    public static class Generated\n    {{\n"
        f"{body}\n    }}\n}}\n"
    )
