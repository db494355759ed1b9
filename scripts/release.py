#!/usr/bin/env python3
"""Release checks and publishing for every package in this repository.

    python scripts/release.py --check-versions      # seconds: versions and core ranges only
    python scripts/release.py --dry-run             # everything except the upload
    python scripts/release.py --dry-run --only astrocyte-pgvector
    python scripts/release.py --publish             # checks, then twine upload in order

What ``--dry-run`` does, per package, in release order (a package after the packages it
requires):

1. **Versions.** Every version is PEP 440; the core's ``pyproject.toml`` version equals
   ``astrocyte/_version.py``; every requirement on a package of this repository (an
   adapter's ``astrocyte>=0.1,<0.2``, the MCP server's ``astrocyte-gateway`` range) is
   bounded above and admits the version being released — so a core release that leaves
   an adapter's declared range breaks here, not on a user's machine.
2. **Build.** ``python -m build`` makes an sdist and a wheel; ``twine check`` validates
   their metadata (README renders, required fields present).
3. **Smoke.** A fresh virtualenv per package gets the built wheels of the repository
   packages it requires (``--no-deps``), then the wheel itself with its third-party
   dependencies from the index; it imports every top-level module of the wheel, loads
   every entry point the wheel declares, runs each console script with ``--help``, and
   for the core runs a retain and a recall with the bundled embedding model (offline).

Results are printed and written as JSON (``--json``, default ``dist/release-report.json``).
Exit status 1 when any check fails. See RELEASING.md for the policy these checks enforce.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import venv
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

ROOT = Path(__file__).resolve().parent.parent
#: Folders that hold one package per sub-folder (plus the core at the root of astrocyte-py).
PACKAGE_PARENTS = (
    "astrocyte-services-py",
    "adapters-storage-py",
    "adapters-ingestion-py",
    "adapters-integration-py",
)
CORE = "astrocyte"

#: Run in the fresh environment of the core: the library must work offline out of the box.
CORE_SMOKE = """
import asyncio, os
os.environ["HF_HUB_OFFLINE"] = "1"
from astrocyte import Astrocyte

async def main() -> None:
    async with Astrocyte.from_config({"storage": {"backend": "memory"}}) as brain:
        await brain.retain("The deploy freeze starts on Friday at noon.", "smoke")
        await brain.retain("Alice prefers green tea.", "smoke")
        hits = (await brain.recall("when does the code freeze begin?", "smoke")).hits
        assert hits and "freeze" in hits[0].text, hits

asyncio.run(main())
print("core smoke: retain + recall with the bundled model ok")
"""

#: Run in every fresh environment: import the wheel's modules, load its entry points.
GENERIC_SMOKE = """
import importlib, importlib.metadata as md, json, sys
dist, modules = sys.argv[1], json.loads(sys.argv[2])
for name in modules:
    importlib.import_module(name)
eps = md.distribution(dist).entry_points
for ep in eps:
    if ep.group != "console_scripts":
        ep.load()
print(f"{dist}: imported {len(modules)} module(s), loaded {len(eps)} entry point(s)")
"""


@dataclass
class Package:
    """One distributable package of the repository."""

    name: str
    version: str
    path: Path
    requires: dict[str, str] = field(default_factory=dict)  # repo package -> specifier
    scripts: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return canonicalize_name(self.name)


@dataclass
class Outcome:
    """What happened to one package."""

    package: str
    version: str
    problems: list[str] = field(default_factory=list)
    artifacts: list[str] = field(default_factory=list)
    build_s: float | None = None
    smoke_s: float | None = None
    smoke_output: str = ""


def discover(root: Path = ROOT) -> list[Package]:
    """Every package (a folder with a ``pyproject.toml`` naming a project)."""
    paths = [root / "astrocyte-py"]
    for parent in PACKAGE_PARENTS:
        paths += sorted(p for p in (root / parent).iterdir() if (p / "pyproject.toml").is_file())
    raw = []
    for path in paths:
        project = tomllib.loads((path / "pyproject.toml").read_text())["project"]
        raw.append((path, project))
    names = {canonicalize_name(project["name"]) for _, project in raw}
    packages = []
    for path, project in raw:
        requires: dict[str, str] = {}
        for spec in project.get("dependencies", []):
            req = Requirement(spec)
            if canonicalize_name(req.name) in names:
                requires[canonicalize_name(req.name)] = str(req.specifier)
        packages.append(
            Package(
                name=project["name"],
                version=project["version"],
                path=path,
                requires=requires,
                scripts=sorted(project.get("scripts", {})),
            )
        )
    return packages


def release_order(packages: Sequence[Package]) -> list[Package]:
    """Packages sorted so each comes after the repository packages it requires."""
    by_key = {p.key: p for p in packages}
    done: list[Package] = []
    seen: set[str] = set()

    def visit(pkg: Package, stack: tuple[str, ...]) -> None:
        if pkg.key in seen:
            return
        if pkg.key in stack:
            raise SystemExit(f"dependency cycle: {' -> '.join((*stack, pkg.key))}")
        for dep in sorted(pkg.requires):
            if dep in by_key:
                visit(by_key[dep], (*stack, pkg.key))
        seen.add(pkg.key)
        done.append(pkg)

    # Otherwise discovery order: core, gateway, storage, ingestion, integration.
    for pkg in sorted(packages, key=lambda p: p.key != CORE):
        visit(pkg, ())
    return done


def check_versions(packages: Sequence[Package], root: Path = ROOT) -> dict[str, list[str]]:
    """Version problems per package key (empty lists when consistent)."""
    problems: dict[str, list[str]] = {p.key: [] for p in packages}
    versions: dict[str, Version] = {}
    for pkg in packages:
        try:
            versions[pkg.key] = Version(pkg.version)
        except InvalidVersion:
            problems[pkg.key].append(f"version {pkg.version!r} is not PEP 440")
    core_file = root / "astrocyte-py" / "astrocyte" / "_version.py"
    match = re.search(r'__version__\s*=\s*"([^"]+)"', core_file.read_text())
    core = next((p for p in packages if p.key == CORE), None)
    if core is not None and (match is None or match.group(1) != core.version):
        found = match.group(1) if match else "nothing"
        problems[CORE].append(
            f"astrocyte/_version.py says {found}, pyproject.toml says {core.version}: "
            "bump both together"
        )
    for pkg in packages:
        for dep, spec in pkg.requires.items():
            specifier = SpecifierSet(spec)
            if not any(s.operator in ("<", "<=", "==", "~=") for s in specifier):
                problems[pkg.key].append(
                    f"requires {dep}{spec or ' (any version)'} with no upper bound: declare "
                    "the supported range, e.g. >=0.1,<0.2"
                )
            target = versions.get(dep)
            if target is not None and not specifier.contains(target, prereleases=True):
                problems[pkg.key].append(
                    f"requires {dep}{spec}, which excludes {dep} {target} being released: "
                    "widen the range after testing against it, or release it later"
                )
    return problems


def _run(
    cmd: Sequence[str | Path], *, cwd: Path | None = None, env: dict[str, str] | None = None
) -> str:
    result = subprocess.run(
        [str(c) for c in cmd],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-25:])
        raise RuntimeError(f"{' '.join(str(c) for c in cmd)} failed:\n{tail}")
    return result.stdout + result.stderr


def build(pkg: Package, outdir: Path) -> list[Path]:
    """sdist + wheel of ``pkg`` into ``outdir`` (cleared first); twine-checked."""
    if outdir.exists():
        shutil.rmtree(outdir)
    outdir.mkdir(parents=True)
    # Build from a copy: setuptools writes *.egg-info and build/ next to the sources.
    with tempfile.TemporaryDirectory(prefix="astrocyte-build-") as tmp:
        src = Path(tmp) / pkg.path.name
        shutil.copytree(
            pkg.path,
            src,
            ignore=shutil.ignore_patterns(
                "*.egg-info", "build", "dist", "__pycache__", ".*_cache", ".hypothesis"
            ),
        )
        _run([sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", outdir, src])
    artifacts = sorted(outdir.iterdir())
    _run([sys.executable, "-m", "twine", "check", "--strict", *artifacts])
    return artifacts


def wheel_modules(wheel: Path) -> list[str]:
    """Top-level importable modules of a wheel (packages and single-file modules)."""
    names: set[str] = set()
    with zipfile.ZipFile(wheel) as zf:
        for entry in zf.namelist():
            top = entry.split("/", 1)[0]
            if top.endswith((".dist-info", ".data")):
                continue
            if "/" in entry and entry.split("/", 1)[1] == "__init__.py":
                names.add(top)
            elif "/" not in entry and entry.endswith(".py"):
                names.add(entry[:-3])
    return sorted(names)


def smoke(pkg: Package, wheels: dict[str, Path], deps: Sequence[str], workdir: Path) -> str:
    """Install ``pkg``'s wheel in a fresh virtualenv and exercise it; returns the log."""
    env_dir = workdir / f"venv-{pkg.key}"
    if env_dir.exists():
        shutil.rmtree(env_dir)
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    python = env_dir / "bin" / "python"
    pip: list[str | Path] = [
        python,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{env_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    log = []
    # The repository packages it needs come from the wheels just built, never the index.
    for dep in deps:
        log.append(_run([*pip, "--no-deps", wheels[dep]], env=env))
    log.append(_run([*pip, wheels[pkg.key]], env=env))
    modules = wheel_modules(wheels[pkg.key])
    log.append(_run([python, "-c", GENERIC_SMOKE, pkg.name, json.dumps(modules)], env=env))
    for script in pkg.scripts:
        _run([env_dir / "bin" / script, "--help"], env=env)
        log.append(f"{script} --help ok")
    if pkg.key == CORE:
        log.append(_run([python, "-c", CORE_SMOKE], env=env))
    shutil.rmtree(env_dir)
    return "\n".join(line for line in "\n".join(log).splitlines() if line.strip())


def closure(pkg: Package, by_key: dict[str, Package]) -> list[str]:
    """Keys of the repository packages ``pkg`` requires, directly or not, dependencies
    first."""
    order: list[str] = []

    def visit(key: str) -> None:
        for dep in sorted(by_key[key].requires):
            if dep in by_key and dep not in order:
                visit(dep)
                order.append(dep)

    visit(pkg.key)
    return order


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check-versions", action="store_true", help="version checks only")
    mode.add_argument("--dry-run", action="store_true", help="every check, no upload")
    mode.add_argument("--publish", action="store_true", help="every check, then upload")
    parser.add_argument("--only", action="append", default=[], help="package name (repeatable)")
    parser.add_argument("--no-smoke", action="store_true", help="skip the fresh-venv installs")
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", help="output folder")
    parser.add_argument("--json", type=Path, default=None, help="report path")
    args = parser.parse_args(list(argv) if argv is not None else None)

    packages = discover()
    by_key = {p.key: p for p in packages}
    ordered = release_order(packages)
    wanted = {canonicalize_name(n) for n in args.only}
    unknown = wanted - {p.key for p in ordered}
    if unknown:
        parser.error(f"--only: no package named {', '.join(sorted(unknown))}")
    print("release order: " + " -> ".join(p.name for p in ordered))

    version_problems = check_versions(packages)
    outcomes = {p.key: Outcome(p.name, p.version, list(version_problems[p.key])) for p in ordered}
    if not args.check_versions:
        wheels: dict[str, Path] = {}
        with tempfile.TemporaryDirectory(prefix="astrocyte-release-") as tmp:
            selected = [p for p in ordered if not wanted or p.key in wanted]
            # A selected package's repository dependencies must be built to smoke it.
            needed = {p.key for p in selected}
            for pkg in selected:
                needed.update(closure(pkg, by_key))
            for pkg in ordered:
                if pkg.key not in needed:
                    continue
                out = outcomes[pkg.key]
                start = time.perf_counter()
                try:
                    artifacts = build(pkg, args.dist / pkg.key)
                except RuntimeError as exc:
                    out.problems.append(f"build: {exc}")
                    continue
                out.build_s = round(time.perf_counter() - start, 1)
                out.artifacts = [
                    str(a.relative_to(ROOT) if a.is_relative_to(ROOT) else a) for a in artifacts
                ]
                wheels[pkg.key] = next(a for a in artifacts if a.suffix == ".whl")
                print(f"built {pkg.name} {pkg.version} in {out.build_s}s")
            if not args.no_smoke:
                for pkg in selected:
                    out = outcomes[pkg.key]
                    deps = closure(pkg, by_key)
                    if pkg.key not in wheels or any(k not in wheels for k in deps):
                        out.problems.append("smoke: not run (a build failed)")
                        continue
                    start = time.perf_counter()
                    try:
                        out.smoke_output = smoke(pkg, wheels, deps, Path(tmp))
                    except RuntimeError as exc:
                        out.problems.append(f"smoke: {exc}")
                    out.smoke_s = round(time.perf_counter() - start, 1)
                    status = "FAILED" if out.problems else "ok"
                    print(f"smoke {pkg.name}: {status} ({out.smoke_s}s)")
        if wanted:
            outcomes = {k: v for k, v in outcomes.items() if k in needed}

    failed = {k: o for k, o in outcomes.items() if o.problems}
    for out in outcomes.values():
        status = "ok" if not out.problems else "FAILED"
        print(f"{status:7} {out.package} {out.version}")
        for problem in out.problems:
            print(f"        - {problem}")
    report = args.json or (args.dist / "release-report.json")
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps([asdict(o) for o in outcomes.values()], indent=2) + "\n")
    print(f"report: {report}")
    if failed:
        return 1
    if args.publish:
        for pkg in ordered:
            if wanted and pkg.key not in wanted:
                continue
            artifacts = sorted((args.dist / pkg.key).iterdir())
            print(f"uploading {pkg.name} {pkg.version}")
            subprocess.run(
                [sys.executable, "-m", "twine", "upload", *map(str, artifacts)], check=True
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
