"""A Griffe extension for the API reference: the package's docstrings use Sphinx roles
(``:class:`~astrocyte.types.RecallHit```) and RST literal blocks (``text::``), which
RST simple tables (``=== ===`` borders), which Markdown would show verbatim. Roles become
inline code; a paragraph ending in ``::`` ends in ``:`` (the indented block after it is
already a Markdown code block); a simple table becomes a Markdown table (a row whose first
cell is empty continues the row above).

Only what the site shows changes; the source docstrings stay as they are.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj|const):`~?([^`]+)`")
_LITERAL = re.compile(r"(\S)::$", re.M)


_BORDER = re.compile(r"^=+( +=+)+ *$")


def _columns(border: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in re.finditer(r"=+", border)]


def _cells(line: str, cols: list[tuple[int, int]]) -> list[str]:
    cells = []
    for i, (start, _end) in enumerate(cols):
        stop = cols[i + 1][0] if i + 1 < len(cols) else len(line)
        cells.append(line[start:stop].strip())
    return cells


def _tables(text: str) -> str:
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        if not _BORDER.match(lines[i]):
            out.append(lines[i])
            i += 1
            continue
        cols = _columns(lines[i])
        rows: list[list[str]] = []
        borders = 1
        i += 1
        while i < len(lines) and borders < 3:
            line = lines[i]
            i += 1
            if _BORDER.match(line):
                borders += 1
            elif line.strip():
                cells = _cells(line, cols)
                if rows and not cells[0] and borders == 2:
                    rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells, strict=True)]
                else:
                    rows.append(cells)
        if not rows:
            continue
        out.append("| " + " | ".join(rows[0]) + " |")
        out.append("|" + "---|" * len(cols))
        out += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(out)


def markdownify(text: str) -> str:
    text = _ROLE.sub(r"`\1`", text)
    text = _tables(text)
    return _LITERAL.sub(r"\1:", text)


class RstRoles(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdownify(obj.docstring.value)
