"""Write the gateway's OpenAPI document to ``openapi.json`` (next to pyproject.toml).

Run after changing a route or model: ``python scripts/export_openapi.py``; the test
``tests/test_openapi.py`` fails while the committed file and the app disagree.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

#: The config the committed document is generated with. The document depends on
#: the config only through the API-key header name (the default here).
CANONICAL_CONFIG: dict[str, Any] = {
    "storage": {"backend": "memory"},
    "embedder": {"provider": "hashing"},
}

SPEC_PATH = Path(__file__).resolve().parent.parent / "openapi.json"


def render() -> str:
    """The document as committed: indented, key order as generated, final newline."""
    from astrocyte_gateway.app import create_app

    spec = create_app(CANONICAL_CONFIG).openapi()
    return json.dumps(spec, indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    """Write the file; print where."""
    SPEC_PATH.write_text(render(), encoding="utf-8")
    print(f"wrote {SPEC_PATH}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
