"""Dependency boundaries (DESIGN §2, CONVENTIONS "the contracts package is a leaf").

The contracts package imports no stage and no tool; a stage imports no other stage and no
tool. Stages are discovered from the tree (``stages/*/src/<package>``), so a new stage is
covered the day it is added. Imports are read with ``ast`` (nothing is imported), including
imports inside functions, ``TYPE_CHECKING`` blocks and ``importlib.import_module("...")``.
"""

from __future__ import annotations

import ast
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

CONTRACTS = "ryuzen_contracts"
TOOLS = "ryuzen_tools"
KNOWN_STAGES = {
    "ryuzen_ingest",
    "ryuzen_sanitize",
    "ryuzen_analytics",
    "ryuzen_bundle",
    "ryuzen_cleanup",
}


def find_repo_root() -> Path:
    """The nearest parent of this file that holds ``Pulumi.yaml``."""
    for parent in Path(__file__).resolve().parents:
        if (parent / "Pulumi.yaml").is_file():
            return parent
    raise RuntimeError(f"no Pulumi.yaml above {__file__}: cannot find the repository root")


REPO = find_repo_root()


@dataclass(frozen=True)
class Package:
    """One import package of the workspace and the project directory that ships it."""

    name: str
    source: Path
    project: Path


def discover_stages(repo: Path) -> list[Package]:
    """Every ``stages/<stage>/src/<package>/`` that is a Python package."""
    return [
        Package(init.parent.name, init.parent, init.parent.parent.parent)
        for init in sorted(repo.glob("stages/*/src/*/__init__.py"))
    ]


def imported_modules(source: str, filename: str = "<string>") -> set[str]:
    """Top-level names of every absolute import in ``source`` (relative imports are internal)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
        elif (
            isinstance(node, ast.Call)
            and _is_dynamic_import(node.func)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.add(node.args[0].value.split(".")[0])
    return names


def _is_dynamic_import(func: ast.expr) -> bool:
    if isinstance(func, ast.Name):
        return func.id in {"__import__", "import_module"}
    return isinstance(func, ast.Attribute) and func.attr == "import_module"


def package_imports(package: Package, root: Path = REPO) -> dict[str, set[str]]:
    """For each ``.py`` file of the package (path relative to ``root``), what it imports."""
    files = sorted(package.source.rglob("*.py"))
    assert files, f"{package.source} holds no Python files"
    return {
        path.relative_to(root).as_posix(): imported_modules(
            path.read_text(encoding="utf-8"), str(path)
        )
        for path in files
    }


def violations(package: Package, allowed_ryuzen: set[str], root: Path = REPO) -> list[str]:
    """``file: imports X`` for every ``ryuzen_*`` import outside ``allowed_ryuzen``."""
    return [
        f"{file}: imports {module}"
        for file, modules in package_imports(package, root).items()
        for module in sorted(modules)
        if module.startswith("ryuzen_") and module not in allowed_ryuzen
    ]


STAGES = discover_stages(REPO)
CONTRACTS_PACKAGE = Package(CONTRACTS, REPO / "shared" / "src" / CONTRACTS, REPO / "shared")


# --- the scanner itself --------------------------------------------------------------------


def test_the_scanner_sees_every_kind_of_import() -> None:
    source = """
import os.path
import ryuzen_ingest.handler as h, json
from ryuzen_sanitize.rules import scrub
from . import sibling
from .local import thing
from typing import TYPE_CHECKING
if TYPE_CHECKING:
    from ryuzen_bundle import builder
def late():
    import ryuzen_cleanup
    importlib.import_module("ryuzen_tools.cli")
    __import__("ryuzen_analytics")
"""
    assert imported_modules(source) == {
        "os",
        "ryuzen_ingest",
        "json",
        "ryuzen_sanitize",
        "typing",
        "ryuzen_bundle",
        "ryuzen_cleanup",
        "ryuzen_tools",
        "ryuzen_analytics",
    }


def test_the_scanner_reports_a_forbidden_import(tmp_path: Path) -> None:
    # Given a contracts-like package that imports a stage inside a function...
    source = tmp_path / "pkg"
    source.mkdir()
    (source / "__init__.py").write_text("", encoding="utf-8")
    (source / "leaky.py").write_text("def f():\n    import ryuzen_ingest\n", encoding="utf-8")
    leaky = Package("pkg", source, tmp_path)

    # ...the check names the file and the import.
    assert violations(leaky, {CONTRACTS}, root=tmp_path) == ["pkg/leaky.py: imports ryuzen_ingest"]


# --- discovery cannot be vacuous ---------------------------------------------------------------


def test_stages_are_discovered() -> None:
    names = {stage.name for stage in STAGES}

    assert "ryuzen_ingest" in names, f"the ingest stage was not found under {REPO / 'stages'}"
    assert all(name.startswith("ryuzen_") for name in names), names
    assert CONTRACTS not in names
    assert (CONTRACTS_PACKAGE.source / "__init__.py").is_file()
    assert (REPO / "tools" / "src" / TOOLS / "__init__.py").is_file()


def test_every_stage_directory_has_a_package() -> None:
    # A stage directory whose src/ holds no package would silently escape the checks below.
    stage_dirs = sorted(path.parent for path in (REPO / "stages").glob("*/pyproject.toml"))
    with_package = {stage.project for stage in STAGES}

    assert [d.name for d in stage_dirs if d not in with_package] == []


# --- the boundaries ------------------------------------------------------------------------------


def test_contracts_imports_no_stage_and_no_tool() -> None:
    found = violations(CONTRACTS_PACKAGE, allowed_ryuzen={CONTRACTS})

    assert found == [], "the contracts package must stay a leaf:\n" + "\n".join(found)


def test_contracts_imports_none_of_the_known_stages() -> None:
    # Belt and braces for the names DESIGN §2 lists, whether or not they exist yet.
    imported = set().union(*package_imports(CONTRACTS_PACKAGE).values())

    assert imported & (KNOWN_STAGES | {TOOLS}) == set()
    assert imported & {stage.name for stage in STAGES} == set()


@pytest.mark.parametrize("stage", STAGES, ids=[stage.name for stage in STAGES])
def test_a_stage_imports_only_itself_and_the_contracts(stage: Package) -> None:
    found = violations(stage, allowed_ryuzen={stage.name, CONTRACTS})

    assert found == [], (
        f"{stage.name} may import only itself and {CONTRACTS} among ryuzen_* packages:\n"
        + "\n".join(found)
    )


# --- declared dependencies match ------------------------------------------------------------------


def _declared_ryuzen_dependencies(project: Path) -> set[str]:
    pyproject = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    names = set()
    for requirement in pyproject["project"].get("dependencies", []):
        name = requirement.split(";")[0].strip()
        for separator in "<>=!~[ ":
            name = name.split(separator)[0]
        if name.startswith("ryuzen-"):
            names.add(name)
    return names


def test_contracts_declares_no_ryuzen_dependency() -> None:
    assert _declared_ryuzen_dependencies(CONTRACTS_PACKAGE.project) == set()


@pytest.mark.parametrize("stage", STAGES, ids=[stage.name for stage in STAGES])
def test_a_stage_declares_only_the_contracts(stage: Package) -> None:
    assert _declared_ryuzen_dependencies(stage.project) <= {"ryuzen-contracts"}
