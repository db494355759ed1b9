"""The JSON Schema of ``astrocyte.yaml``, generated from the pydantic models.

``docs/config.schema.json`` is this output, committed so editors can validate and
complete config files (``# yaml-language-server: $schema=...``); a test fails when
the committed file no longer matches the models. Regenerate it with::

    python -m astrocyte.config.export            # writes docs/config.schema.json
    python -m astrocyte.config.export --check    # exit 1 if it is out of date
    astrocyte config schema --output docs/config.schema.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from astrocyte.config.schema import AstrocyteConfig

# astrocyte-py/astrocyte/config/export.py -> the repository root.
_REPO_ROOT = Path(__file__).resolve().parents[3]
DEFAULT_SCHEMA_PATH = _REPO_ROOT / "docs" / "config.schema.json"


def config_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the config file, as a dict."""
    # "validation" mode: the schema of what a user may write (defaults optional),
    # not of what a dump contains.
    schema = AstrocyteConfig.model_json_schema(mode="validation")
    return {"$schema": schema.pop("$schema"), **schema}


def render_schema() -> str:
    """:func:`config_json_schema` as stable text (sorted keys; ends in a newline)."""
    return json.dumps(config_json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def schema_is_current(path: Path) -> bool:
    """Whether ``path`` holds exactly what :func:`render_schema` produces."""
    try:
        return path.read_text(encoding="utf-8") == render_schema()
    except OSError:
        return False


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m astrocyte.config.export [PATH] [--check]``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m astrocyte.config.export",
        description="Write (or --check) the JSON Schema of astrocyte.yaml.",
    )
    parser.add_argument(
        "path",
        nargs="?",
        default=str(DEFAULT_SCHEMA_PATH),
        help="where to write (default: docs/config.schema.json of this checkout); '-' for stdout",
    )
    parser.add_argument(
        "--check", action="store_true", help="do not write; exit 1 if PATH is out of date"
    )
    args = parser.parse_args(argv)
    if args.path == "-":
        sys.stdout.write(render_schema())
        return 0
    path = Path(args.path)
    if args.check:
        if schema_is_current(path):
            print(f"{path} is up to date")
            return 0
        print(
            f"{path} is out of date; run: python -m astrocyte.config.export {path}",
            file=sys.stderr,
        )
        return 1
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_schema(), encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
