"""scripts/release.py: the version/range checks CI runs on every commit, release order,
and what the smoke step imports from a wheel."""

from __future__ import annotations

import importlib.util
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("release", ROOT / "scripts" / "release.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["release"] = module
    spec.loader.exec_module(module)
    return module


release = _load()


def _repo(tmp: Path, core: str, core_file: str, adapters: dict[str, list[str]]) -> Path:
    (tmp / "astrocyte-py" / "astrocyte").mkdir(parents=True)
    (tmp / "astrocyte-py" / "pyproject.toml").write_text(
        f'[project]\nname = "astrocyte"\nversion = "{core}"\n'
    )
    (tmp / "astrocyte-py" / "astrocyte" / "_version.py").write_text(
        f'__version__ = "{core_file}"\n'
    )
    for parent in release.PACKAGE_PARENTS:
        (tmp / parent).mkdir()
    for name, deps in adapters.items():
        pkg = tmp / "adapters-storage-py" / name
        pkg.mkdir()
        (pkg / "pyproject.toml").write_text(
            f'[project]\nname = "{name}"\nversion = "0.1.0"\ndependencies = {deps!r}\n'.replace(
                "'", '"'
            )
        )
    return tmp


def test_the_repository_is_consistent() -> None:
    """The CI step: every package's version and declared core range agree right now."""
    packages = release.discover()
    assert {"astrocyte", "astrocyte-gateway", "astrocyte-pgvector"} <= {p.key for p in packages}
    assert release.check_versions(packages) == {p.key: [] for p in packages}
    assert all(p.requires.get("astrocyte") for p in packages if p.key != "astrocyte")


def test_range_that_excludes_the_core_is_reported(tmp_path: Path) -> None:
    root = _repo(
        tmp_path,
        "0.2.0",
        "0.2.0",
        {
            "astrocyte-old": ["astrocyte>=0.1,<0.2", "httpx>=0.27"],
            "astrocyte-open": ["astrocyte>=0.1"],
            "astrocyte-good": ["astrocyte>=0.1,<0.3"],
        },
    )
    problems = release.check_versions(release.discover(root), root)
    assert problems["astrocyte-good"] == []
    assert problems["astrocyte"] == []
    (old,) = problems["astrocyte-old"]
    assert "excludes astrocyte 0.2.0" in old
    (open_,) = problems["astrocyte-open"]
    assert "no upper bound" in open_


def test_version_file_must_match_pyproject(tmp_path: Path) -> None:
    root = _repo(tmp_path, "0.2.0", "0.1.9", {})
    (problem,) = release.check_versions(release.discover(root), root)["astrocyte"]
    assert "_version.py says 0.1.9" in problem


def test_invalid_version_is_reported(tmp_path: Path) -> None:
    root = _repo(tmp_path, "not-a-version", "not-a-version", {})
    assert any(
        "PEP 440" in p for p in release.check_versions(release.discover(root), root)["astrocyte"]
    )


@given(
    st.lists(st.lists(st.integers(0, 7), max_size=3), min_size=1, max_size=8).map(
        # package i may only require packages with a smaller index: always a DAG
        lambda deps: [sorted({d for d in ds if d < i}) for i, ds in enumerate(deps)]
    )
)
def test_release_order_puts_dependencies_first(deps: list[list[int]]) -> None:
    packages = [
        release.Package(
            name="astrocyte" if i == 0 else f"pkg-{i}",
            version="0.1.0",
            path=Path(f"/x/{i}"),
            requires={("astrocyte" if d == 0 else f"pkg-{d}"): ">=0.1,<0.2" for d in ds},
        )
        for i, ds in enumerate(deps)
    ]
    order = [p.key for p in release.release_order(list(reversed(packages)))]
    assert sorted(order) == sorted(p.key for p in packages)
    assert order[0] == "astrocyte"
    for p in packages:
        for dep in p.requires:
            assert order.index(dep) < order.index(p.key)
    by_key = {p.key: p for p in packages}
    for p in packages:
        chain = release.closure(p, by_key)
        assert set(p.requires) <= set(chain) and p.key not in chain


def test_cycle_is_refused() -> None:
    a = release.Package("a", "1", Path("/a"), {"b": "<2"})
    b = release.Package("b", "1", Path("/b"), {"a": "<2"})
    with pytest.raises(SystemExit, match="cycle"):
        release.release_order([a, b])


def test_wheel_modules(tmp_path: Path) -> None:
    wheel = tmp_path / "x-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("pkg_a/__init__.py", "")
        zf.writestr("pkg_a/sub/__init__.py", "")
        zf.writestr("single.py", "")
        zf.writestr("x-0.1.0.dist-info/METADATA", "")
        zf.writestr("pkg_a/data.json", "{}")
    assert release.wheel_modules(wheel) == ["pkg_a", "single"]
