"""Development sessions for the offload monorepo: ``nox -l`` lists them.

    nox -s tests            # every package installed (editable), then pytest tests/
    nox -s tests -- -k job  # arguments after -- go to pytest
    nox -s demo             # examples/demo.py on the packages as a user installs them
    nox -s lint             # ruff check, ruff format --check, mypy (strict) on packages/*/src
    nox -s isolated         # each package alone in a fresh venv: its declared deps suffice

Packages are discovered: every ``packages/*/pyproject.toml`` is one distribution, so a new
package (``packages/slurm``, ``packages/helpers``...) joins every session without editing this
file. Example plugins under ``docs/examples/*/pyproject.toml`` are installed for the tests too.

uv creates and fills the virtualenvs when it is installed (``pip install uv``); otherwise
virtualenv and pip do, so a plain ``pip install nox`` is enough.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

import nox
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

nox.needs_version = ">=2024.3.2"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["lint", "tests", "demo"]

ROOT = Path(__file__).parent.resolve()
SHARED = {"offload-core"}
"""The monorepo packages others may depend on: backends never depend on each other (DESIGN.md)."""
REQUIREMENTS = ROOT / "requirements"


@dataclass(frozen=True)
class Package:
    """One distribution of the monorepo, read from its ``pyproject.toml``."""

    folder: Path
    name: str  # canonical distribution name: "offload-core"
    imports: tuple[str, ...]  # "offload.core"
    requires: tuple[Requirement, ...]

    @property
    def short(self) -> str:
        return self.folder.name

    @property
    def src(self) -> Path:
        return self.folder / "src"


def _read_package(pyproject: Path) -> Package:
    project = nox.project.load_toml(pyproject)["project"]
    folder = pyproject.parent
    imports = tuple(
        f"offload.{init.parent.name}"
        for init in sorted((folder / "src" / "offload").glob("*/__init__.py"))
    )
    if not imports:
        raise ValueError(f"{folder} has no src/offload/<name>/__init__.py")
    requires = tuple(Requirement(text) for text in project.get("dependencies", []))
    return Package(folder, canonicalize_name(project["name"]), imports, requires)


PACKAGES = [_read_package(path) for path in sorted(ROOT.glob("packages/*/pyproject.toml"))]
BY_NAME = {package.name: package for package in PACKAGES}
EXAMPLES = sorted(path.parent for path in ROOT.glob("docs/examples/*/pyproject.toml"))


def _offload_closure(package: Package) -> set[str]:
    """``package`` and every monorepo package it needs, directly or not."""
    wanted: set[str] = set()
    todo = [package.name]
    while todo:
        name = todo.pop()
        if name in wanted:
            continue
        wanted.add(name)
        todo.extend(
            dep for req in BY_NAME[name].requires if (dep := canonicalize_name(req.name)) in BY_NAME
        )
    return wanted


def _third_party_requirements() -> list[str]:
    """The dependencies of all packages that do not come from this repository."""
    found = {
        str(req)
        for package in PACKAGES
        for req in package.requires
        if canonicalize_name(req.name) not in BY_NAME
    }
    return sorted(found)


def _reinstall_flags(session: nox.Session, names: list[str]) -> list[str]:
    # uv skips local packages that are already installed (nox -r reuses venvs): force them.
    if session.venv_backend != "uv":
        return []
    return [flag for name in names for flag in ("--reinstall-package", name)]


def _install_monorepo(session: nox.Session, *, editable: bool, examples: bool = False) -> None:
    """Install every package of packages/ (and with ``examples``, of docs/examples/) at once."""
    folders = [package.folder for package in PACKAGES] + (EXAMPLES if examples else [])
    names = [package.name for package in PACKAGES]
    if examples:
        names += [nox.project.load_toml(f / "pyproject.toml")["project"]["name"] for f in EXAMPLES]
    args = [str(folder) for folder in folders]
    if editable:
        args = [arg for path in args for arg in ("-e", path)]
    session.install(*_reinstall_flags(session, names), *args)


@nox.session
def tests(session: nox.Session) -> None:
    """Run pytest over tests/ with every package (and docs/examples plugins) installed.

    Exit code 5 of pytest (no test collected) fails the session, like any non-zero code.
    """
    _install_monorepo(session, editable=True, examples=True)
    session.install("-r", str(REQUIREMENTS / "tests.txt"))
    # torch through pip itself: it finds the CPU build that the machines keep on disk.
    session.install("pip")
    session.run(
        "python", "-m", "pip", "install", "--disable-pip-version-check", "--quiet",
        "-r", str(REQUIREMENTS / "torch.txt"),
    )  # fmt: skip
    args = session.posargs or ["tests/"]
    session.run("pytest", "--durations=10", *args)


def _slurm_answers() -> bool:
    try:
        sinfo = subprocess.run(["sinfo", "--noheader"], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return sinfo.returncode == 0


@nox.session
def bench(session: nox.Session) -> None:
    """offload against submitit on the live Slurm test cluster; prints a table (the workloads
    are described in benchmarks/bench.py). Starts the cluster when none answers, as root.

    Arguments after -- go to benchmarks/bench.py: ``nox -s bench -- --repeat 5 --only 1,3``.
    """
    # Byte-compiled at install time, as pip installs packages for users (uv does not by default):
    # each of the hundreds of job processes would otherwise compile offload and submitit again.
    session.env["UV_COMPILE_BYTECODE"] = "1"
    _install_monorepo(session, editable=False)
    session.install("-r", str(REQUIREMENTS / "bench.txt"))
    if not _slurm_answers():
        if os.geteuid() != 0:
            session.error("no Slurm cluster answers: start one with tools/slurm-test-cluster start")
        session.run(str(ROOT / "tools" / "slurm-test-cluster"), "start", external=True)
    session.run("python", str(ROOT / "benchmarks" / "bench.py"), *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """Install the packages as a user would (not editable) and run examples/demo.py."""
    _install_monorepo(session, editable=False)
    session.run("python", str(ROOT / "examples" / "demo.py"), *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the tree, mypy (strict) over packages/*/src."""
    session.install("-r", str(REQUIREMENTS / "lint.txt"), *_third_party_requirements())
    failed = []  # run every check all the same, to see every finding at once
    try:
        session.run("ruff", "check", "--output-format=concise", *session.posargs, ".")
    except nox.command.CommandFailed:
        failed.append("ruff check")
    try:
        session.run("ruff", "format", "--check", ".")
    except nox.command.CommandFailed:
        failed.append("ruff format (run `ruff format` on the files listed)")
    # mypy_path in pyproject.toml lists the known packages; MYPYPATH adds any newer one, so that
    # the PEP 420 namespace `offload` resolves across every packages/*/src.
    sources = [str(package.src.relative_to(ROOT)) for package in PACKAGES]
    try:
        session.run(
            "mypy", *sources, "examples/demo.py", env={"MYPYPATH": os.pathsep.join(sources)}
        )
    except nox.command.CommandFailed:
        failed.append("mypy")
    if failed:
        session.error(f"{' and '.join(failed)} found problems (listed above)")


@nox.session
@nox.parametrize("package", [p.short for p in PACKAGES], ids=[p.short for p in PACKAGES])
def isolated(session: nox.Session, package: str) -> None:
    """Install one package alone from its wheel; prove its declared dependencies suffice.

    All monorepo packages are built as wheels into one folder; pip installs the package's wheel
    with ``--find-links`` on that folder, so sibling packages come from this checkout and third
    party ones from the index. Then: its modules and entry points import, ``pip check`` passes,
    and the offload distributions installed are exactly the package and what it declares.
    """
    target = next(p for p in PACKAGES if p.short == package)
    expected = sorted(_offload_closure(target))
    forbidden = sorted(set(expected) - SHARED - {target.name})
    if forbidden:
        session.error(
            f"{target.name} depends on {forbidden}: a package may depend on {sorted(SHARED)} "
            f"only, so that installing it pulls in no other backend. Fix [project].dependencies "
            f"in {target.folder.relative_to(ROOT)}/pyproject.toml (or SHARED in noxfile.py)."
        )
    wheels = _wheelhouse(session)
    # pip, not uv, resolves: this is how users install. (uv venvs come without pip.)
    session.install("pip")
    pip = ["python", "-m", "pip", "--disable-pip-version-check", "--no-input"]
    session.run(*pip, "install", "--find-links", str(wheels), str(wheels[target.name]))
    session.run(*pip, "check")

    probe = Path(session.create_tmp()) / "probe.py"
    probe.write_text(_PROBE.format(imports=list(target.imports), name=target.name))
    report = json.loads(session.run("python", str(probe), silent=True) or "{}")
    installed = report["offload"]
    session.log(f"offload distributions installed: {', '.join(sorted(installed))}")
    for line in report["loaded"]:
        session.log(line)
    if sorted(installed) != expected:
        extra = sorted(set(installed) - set(expected))
        missing = sorted(set(expected) - set(installed))
        session.error(
            f"installing {target.name} brought offload distributions {sorted(installed)}, "
            f"expected {expected} (unexpected: {extra or 'none'}; missing: {missing or 'none'}). "
            f"Check [project].dependencies in {target.folder.relative_to(ROOT)}/pyproject.toml."
        )
    for name, digest in installed.items():
        if digest != wheels.metadata_digest(name):
            session.error(
                f"{name} was not installed from this checkout's wheel (another "
                "release with that name and version was found on the index?)"
            )


# Run inside the isolated venv: imports the package and its entry points, then prints JSON with
# the offload distributions installed (name -> sha256 of their METADATA).
_PROBE = """
import hashlib, importlib, importlib.metadata as md, json
for module in {imports!r}:
    importlib.import_module(module)
loaded = []
for ep in md.entry_points(group="offload"):
    if ep.dist is not None and ep.dist.name.lower().replace("_", "-") == {name!r}:
        ep.load()
        loaded.append(f"entry point offload:{{ep.name}} = {{ep.value}} loads")
offload = {{}}
for dist in md.distributions():
    name = dist.metadata["Name"].lower().replace("_", "-")
    if name.startswith("offload-"):
        offload[name] = hashlib.sha256(dist.read_text("METADATA").encode()).hexdigest()
print(json.dumps({{"offload": offload, "loaded": loaded}}))
"""


class _Wheelhouse:
    """Wheels of every monorepo package, built once per nox run into .nox/_wheelhouse."""

    def __init__(self, folder: Path, wheels: dict[str, Path]) -> None:
        self.folder = folder
        self.wheels = wheels

    def __str__(self) -> str:
        return str(self.folder)

    def __getitem__(self, name: str) -> Path:
        return self.wheels[name]

    def metadata_digest(self, name: str) -> str:
        with zipfile.ZipFile(self.wheels[name]) as archive:
            member = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
            return hashlib.sha256(archive.read(member)).hexdigest()


_WHEELHOUSE: _Wheelhouse | None = None


def _wheelhouse(session: nox.Session) -> _Wheelhouse:
    global _WHEELHOUSE
    if _WHEELHOUSE is None:
        folder = ROOT / ".nox" / "_wheelhouse"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        session.install("pip")
        for package in PACKAGES:
            session.run(
                "python",
                "-m",
                "pip",
                "--disable-pip-version-check",
                "wheel",
                "--no-deps",
                "--quiet",
                "--wheel-dir",
                str(folder),
                str(package.folder),
            )
        wheels: dict[str, Path] = {}
        for path in folder.glob("*.whl"):
            name = canonicalize_name(path.name.split("-")[0])
            if name in BY_NAME:
                wheels[name] = path
        missing = sorted(set(BY_NAME) - set(wheels))
        if missing:
            session.error(f"no wheel was built for {missing} in {folder}")
        _WHEELHOUSE = _Wheelhouse(folder, wheels)
    return _WHEELHOUSE
