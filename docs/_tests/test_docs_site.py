"""The documentation site builds cleanly and says what it must.

Run from the repository root: ``python -m pytest -q docs/_tests``. One strict build of the
real site is shared by the module; the broken-link test builds a trimmed copy (no API
reference, so no mkdocstrings) to show that the strict build can fail.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

import astrocyte
from astrocyte.config.schema import AstrocyteConfig

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "docs" / "_hooks"))

import astrocyte_docs  # noqa: E402  (the hook module, imported from docs/_hooks)


@dataclass
class Build:
    returncode: int
    output: str
    site: Path
    seconds: float

    @property
    def warnings(self) -> list[str]:
        return [line for line in self.output.splitlines() if "WARNING" in line]


def mkdocs_build(config: Path, site: Path) -> Build:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "NO_COLOR": "1"}
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d", str(site)],
        cwd=config.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return Build(proc.returncode, proc.stdout + proc.stderr, site, time.perf_counter() - start)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Build:
    build = mkdocs_build(REPO / "mkdocs.yml", tmp_path_factory.mktemp("site") / "site")
    print(f"mkdocs build --strict took {build.seconds:.1f}s")
    return build


def read_inventory(path: Path) -> set[str]:
    """Object names in a Sphinx v2 ``objects.inv`` (four header lines, then zlib)."""
    data = path.read_bytes()
    header_end = 0
    for _ in range(4):
        header_end = data.index(b"\n", header_end) + 1
    assert data.startswith(b"# Sphinx inventory version 2")
    body = zlib.decompress(data[header_end:]).decode("utf-8")
    return {line.split(" ", 1)[0] for line in body.splitlines() if line.strip()}


def test_strict_build_has_no_warnings(built: Build) -> None:
    assert built.returncode == 0, built.output
    assert built.warnings == [], "\n".join(built.warnings)
    assert (built.site / "index.html").is_file()


def test_every_public_name_is_in_the_api_reference(built: Build) -> None:
    inventory = read_inventory(built.site / "objects.inv")
    # __version__ and load_config are documented like the rest: astrocyte.__version__
    # (data) and astrocyte.load_config (function) on the facade page.
    missing = [name for name in astrocyte.__all__ if f"astrocyte.{name}" not in inventory]
    assert missing == []
    for module in ("astrocyte.sync", "astrocyte.testing", "astrocyte.integrations.common"):
        assert module in inventory
    for suite in ("Document", "Vector", "Graph"):
        assert f"astrocyte.testing.{suite}StoreConformance" in inventory
    assert "astrocyte.testing.AtomicWriterConformance" in inventory


def test_config_reference_covers_every_section(built: Build) -> None:
    page = (built.site / "reference" / "configuration" / "index.html").read_text("utf-8")
    sections = [f.alias or name for name, f in AstrocyteConfig.model_fields.items()]
    assert len(sections) >= 10
    missing = [s for s in sections if f'id="{s}"' not in page]
    assert missing == []
    # fields of nested sections and their enums are there too
    assert 'id="def-storageroute"' in page and "first_match" in page


def test_gateway_reference_lists_every_operation(built: Build) -> None:
    import json

    spec = json.loads((REPO / astrocyte_docs.OPENAPI_PATH).read_text("utf-8"))
    page = (built.site / "gateway" / "api" / "index.html").read_text("utf-8")
    for path, item in spec["paths"].items():
        for method in item:
            assert f'id="{astrocyte_docs._op_anchor(method, path)}"' in page, (method, path)
    assert "X-Api-Key" in page and "Error codes" in page


def test_links_leaving_docs_are_rewritten(built: Build) -> None:
    repo_url = yaml.safe_load((REPO / "mkdocs.yml").read_text("utf-8"))["repo_url"]
    extraction = (built.site / "extraction" / "index.html").read_text("utf-8")
    assert f'href="{repo_url}/blob/main/astrocyte-py/astrocyte/pipeline/retain.py"' in extraction
    integrations = (built.site / "integrations" / "index.html").read_text("utf-8")
    assert f'href="{repo_url}/tree/main/astrocyte-py/astrocyte/integrations"' in integrations
    # a README that has a page here is linked to that page, not to GitHub
    storage = (built.site / "storage-adapters" / "index.html").read_text("utf-8")
    assert 'href="../packages/storage/pgvector/"' in storage
    assert (built.site / "packages" / "storage" / "pgvector" / "index.html").is_file()


def _trimmed_copy(dest: Path) -> Path:
    """The repository seen through symlinks, with a real copy of docs/ and a mkdocs.yml
    without the API reference (mkdocstrings is the slow part of a build)."""
    dest.mkdir()
    for entry in REPO.iterdir():
        if entry.name not in {"docs", "mkdocs.yml", "site"} and not entry.name.startswith("."):
            (dest / entry.name).symlink_to(entry)
    shutil.copytree(
        REPO / "docs", dest / "docs", ignore=shutil.ignore_patterns("_tests", "__pycache__")
    )
    shutil.rmtree(dest / "docs" / "reference" / "api")
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text("utf-8"))
    config["plugins"] = [p for p in config["plugins"] if not isinstance(p, dict)]
    config["nav"] = [
        item for item in config["nav"] if not (isinstance(item, dict) and "API reference" in item)
    ]
    (dest / "mkdocs.yml").write_text(yaml.safe_dump(config, sort_keys=False), "utf-8")
    return dest / "mkdocs.yml"


def test_planted_broken_links_fail_the_strict_build(tmp_path: Path) -> None:
    config = _trimmed_copy(tmp_path / "repo")
    index = tmp_path / "repo" / "docs" / "index.md"
    index.write_text(
        index.read_text("utf-8") + "\n[a](no-such-page.md) [b](architecture.md#no-such-anchor)"
        " [c](../astrocyte-py/no_such_module.py)\n",
        "utf-8",
    )
    build = mkdocs_build(config, tmp_path / "site")
    assert build.returncode != 0
    text = "\n".join(build.warnings)
    for planted in ("no-such-page.md", "no-such-anchor", "no_such_module.py"):
        assert planted in text, build.output


def test_link_rewriting_skips_code() -> None:
    seen: list[str] = []

    def record(target: str, is_image: bool) -> str:
        seen.append(target)
        return "NEW"

    markdown = (
        "see [`engine.py`](../x/engine.py) and `[not](a-link.md)`\n"
        "```\n[not](in-a-fence.md)\n```\n"
        "[ref]: ../y/ref.md\n"
        '![img](../z/pic.png "title")\n'
    )
    out = astrocyte_docs.rewrite_links(markdown, record)
    assert seen == ["../x/engine.py", "../y/ref.md", "../z/pic.png"]
    assert "[`engine.py`](NEW)" in out and "`[not](a-link.md)`" in out
    assert "[not](in-a-fence.md)" in out and '![img](NEW "title")' in out


def test_nav_patterns_expand_and_empty_sections_drop() -> None:
    nav = [{"A": ["x.md", "pkg/c.md", "pkg/*"]}, {"Empty": ["nothing/*"]}, {"B": "adr/*"}]
    pages = ["pkg/b.md", "pkg/c.md", "pkg/index.md", "pkg/a.md", "adr/0001.md"]
    assert astrocyte_docs.expand_nav(nav, pages) == [
        {"A": ["x.md", "pkg/c.md", "pkg/index.md", "pkg/a.md", "pkg/b.md"]},
        {"B": "adr/0001.md"},
    ]


def test_every_package_readme_gets_a_page() -> None:
    pages = astrocyte_docs.discover_readmes(REPO)
    for readme in REPO.glob("adapters-*-py/*/README.md"):
        assert readme.relative_to(REPO).as_posix() in pages
    assert pages["adapters-storage-py/astrocyte-pgvector/README.md"] == (
        "packages/storage/pgvector.md"
    )
    assert len(set(pages.values())) == len(pages)
    assert not any(re.search(r"\.pytest_cache|node_modules", p) for p in pages)
