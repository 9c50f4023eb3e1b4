"""One noxfile for every package: lint, typecheck, per-package tests, the demo, benchmarks.

Each ``tests`` session syncs *only* that package, its declared dependencies and its
``test`` dependency group from the lock file into its own venv (``uv sync --package``),
so a dependency a package forgot to declare fails there, not in production.

    nox                                  # the full test suite (every package)
    nox -s "tests(package='ingest')"     # one package
    nox -s demo -- --events 5000         # the main job on the embedded AWS
    nox -s bench -- ingest               # benchmarks print figures; they are not tests
    nox -s build [-- sanitize]           # Lambda zips and the bundle image context in dist/
    nox -s infra                         # the Pulumi program under Pulumi mocks
"""

from __future__ import annotations

from pathlib import Path

import nox

ROOT = Path(__file__).parent
# short name -> (distribution, directory). A new stage is one line here.
PACKAGES: dict[str, tuple[str, str]] = {
    "contracts": ("ryuzen-contracts", "shared"),
    "analytics": ("ryuzen-analytics", "stages/analytics"),
    "bundle": ("ryuzen-bundle", "stages/bundle"),
    "cleanup": ("ryuzen-cleanup", "stages/cleanup"),
    "ingest": ("ryuzen-ingest", "stages/ingest"),
    "sanitize": ("ryuzen-sanitize", "stages/sanitize"),
    "tools": ("ryuzen-tools", "tools"),
}
BENCHMARKS = sorted(
    path.stem.removesuffix("_bench") for path in (ROOT / "bench").glob("*_bench.py")
)

nox.options.default_venv_backend = "uv"
nox.options.sessions = ["tests", "infra"]
nox.options.reuse_existing_virtualenvs = True


def sync(session: nox.Session, distribution: str | None, *groups: str) -> None:
    """Install ``distribution`` (or the whole workspace) from uv.lock into the session venv."""
    args = ["uv", "sync", "--frozen", "--inexact" if distribution is None else "--exact"]
    if distribution is not None:
        args += ["--package", distribution, "--no-default-groups"]
    for group in groups:
        args += ["--group", group]
    session.run_install(*args, env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location})


@nox.session
@nox.parametrize("package", list(PACKAGES))
def tests(session: nox.Session, package: str) -> None:
    """Run one package's tests in a venv holding only that package and its dependencies."""
    distribution, directory = PACKAGES[package]
    sync(session, distribution, "test")
    session.run("pytest", f"{directory}/tests", "-q", "-p", "no:cacheprovider", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff: lint rules and formatting."""
    sync(session, None, "dev")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy: strict on the contracts, standard on stages and tools."""
    sync(session, None, "dev")
    session.run("mypy", "shared/src")
    session.run(
        "mypy",
        *(f"{directory}/src" for name, (_, directory) in PACKAGES.items() if name != "contracts"),
    )


@nox.session
def demo(session: nox.Session) -> None:
    """The main job on the embedded default: `ryuzen local demo` against moto's server."""
    sync(session, "ryuzen-tools")
    session.run("ryuzen", "local", "demo", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks (`nox -s bench -- ingest`); with no argument, every one. Prints figures."""
    sync(session, None, "dev", "bench")
    chosen = session.posargs or BENCHMARKS
    unknown = sorted(set(chosen) - set(BENCHMARKS))
    if unknown:
        session.error(f"unknown benchmark(s) {unknown}; known: {BENCHMARKS}")
    for name in chosen:
        session.run("python", f"bench/{name}_bench.py")
    # bench/RESULTS.md: every result file's figures beside their same-run baselines.
    session.run("python", "bench/results_report.py")


def sync_infra(session: nox.Session) -> None:
    """The ``infra`` group alone (Pulumi, its providers, the contracts, pytest)."""
    session.run_install(
        "uv", "sync", "--frozen", "--exact", "--no-default-groups", "--group", "infra",
        env={"UV_PROJECT_ENVIRONMENT": session.virtualenv.location},
    )  # fmt: skip


@nox.session
def build(session: nox.Session) -> None:
    """Deterministic Lambda zips (Python 3.12, manylinux aarch64) and the bundle image
    context in dist/: every stage, or `nox -s build -- sanitize` for one."""
    sync_infra(session)
    session.run("python", "-m", "infra.build_artifacts", *session.posargs)


@nox.session
def infra(session: nox.Session) -> None:
    """The Pulumi program's tests (Pulumi mocks: no CLI, no AWS) and the build's."""
    sync_infra(session)
    session.run("pytest", "infra/tests", "-q", "-p", "no:cacheprovider", *session.posargs)
