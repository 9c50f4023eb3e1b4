"""Building what the Pulumi program deploys: one Lambda zip per stage, and the bundle image context.

``nox -s build`` (every stage) or ``nox -s build -- sanitize`` (one) runs
``python -m infra.build_artifacts``. For each stage it

1. exports the stage's locked third-party dependencies from ``uv.lock`` (``uv export``,
   with hashes) and builds wheels of the stage and the workspace packages it uses;
2. installs them into a plain directory for **Python 3.12 on manylinux aarch64**
   (``uv pip install --target --python-version 3.12 --python-platform
   aarch64-manylinux2014 --only-binary :all:``) — nothing is ever run on 3.12 here, and
   no source distribution is built for the target, so what is installed is exactly the
   locked wheels Lambda's arm64 runtime can load;
3. drops what must not ship (``__pycache__``, ``*.pyc``, ``tests`` directories, console
   scripts whose shebang names this machine's interpreter, the dist-info files that
   record this machine's paths and install times);
4. refuses a tree over Lambda's 250 MB unzipped limit, naming its largest parts;
5. writes ``dist/<distribution>-<version>-arm64.zip`` **deterministically** (entries
   sorted, every timestamp 1980-01-01, modes normalised to 0644/0755, no directory
   entries), and beside it a ``.json`` manifest with its SHA-256 and the fingerprint of
   the sources it was built from.

Two builds of the same sources give the same bytes, so the program can use the SHA-256
as the object key and the Lambda code hash: an unchanged stage is not redeployed. The
program refuses a missing artifact, and one whose fingerprint no longer matches the
sources, with a message naming ``nox -s build``.

The bundle stage also gets its image context, ``dist/ryuzen-bundle-<version>-image/``:
``stages/bundle/Dockerfile`` and ``.dockerignore`` beside the same installed tree, every
mtime pinned, and a manifest with the context's digest (the image tag). Its Dockerfile
only copies files, so it builds for arm64 on any machine without emulation.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DIST_DIR = REPO_ROOT / "dist"

PYTHON_VERSION = "3.12"
PYTHON_PLATFORM = "aarch64-manylinux2014"
# Lambda's limit on a function's unzipped code (layers included): 250 MB.
LAMBDA_UNZIPPED_LIMIT = 262_144_000
# 1980-01-01 is the earliest time a ZIP entry can hold; it also pins the image context.
FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
FIXED_EPOCH = 315_532_800  # 1980-01-01T00:00:00Z
MANIFEST_FORMAT = 1
# Stripped from every tree: byte code compiled by this machine's Python, test suites,
# console scripts (their shebang names this machine's interpreter), and the dist-info
# records of where and when a local wheel was installed from (direct_url.json holds this
# machine's path, uv_cache.json the install time).
_DROPPED_DIST_INFO = frozenset({"direct_url.json", "uv_cache.json"})
_DROPPED_DIRECTORIES = frozenset({"__pycache__", "tests"})
_DROPPED_SUFFIXES = (".pyc", ".pyo")
_DROPPED_TOP_LEVEL = frozenset({"bin"})


class BuildError(RuntimeError):
    """A stage cannot be built or its artifact is unusable; the message says what to do."""


@dataclass(frozen=True)
class Stage:
    """A workspace package that ships as a Lambda zip (and, for bundle, an image)."""

    name: str
    distribution: str
    directory: str
    import_name: str
    image: bool = False

    @property
    def version(self) -> str:
        """The package version, from its own pyproject.toml (its one version string)."""
        document = tomllib.loads((REPO_ROOT / self.directory / "pyproject.toml").read_text())
        return str(document["project"]["version"])

    def zip_path(self, dist: Path = DIST_DIR) -> Path:
        """``dist/<distribution>-<version>-arm64.zip``."""
        return dist / f"{self.distribution}-{self.version}-arm64.zip"

    def zip_manifest_path(self, dist: Path = DIST_DIR) -> Path:
        """The zip's manifest (SHA-256, sizes, source fingerprint)."""
        return dist / f"{self.distribution}-{self.version}-arm64.json"

    def image_context_path(self, dist: Path = DIST_DIR) -> Path:
        """``dist/<distribution>-<version>-image/``: the docker build context."""
        return dist / f"{self.distribution}-{self.version}-image"

    def image_manifest_path(self, dist: Path = DIST_DIR) -> Path:
        """The image context's manifest (context digest, source fingerprint)."""
        return dist / f"{self.distribution}-{self.version}-image.json"


STAGES: dict[str, Stage] = {
    stage.name: stage
    for stage in (
        Stage("ingest", "ryuzen-ingest", "stages/ingest", "ryuzen_ingest"),
        Stage("sanitize", "ryuzen-sanitize", "stages/sanitize", "ryuzen_sanitize"),
        Stage("analytics", "ryuzen-analytics", "stages/analytics", "ryuzen_analytics"),
        Stage("bundle", "ryuzen-bundle", "stages/bundle", "ryuzen_bundle", image=True),
        Stage("cleanup", "ryuzen-cleanup", "stages/cleanup", "ryuzen_cleanup"),
    )
}
IMAGE_FILES = ("Dockerfile", ".dockerignore")


# -- what a stage is built from ----------------------------------------------------------


def workspace_dependencies(stage: Stage) -> list[Path]:
    """The workspace package directories ``stage`` ships: itself and its workspace sources."""
    document = tomllib.loads((REPO_ROOT / stage.directory / "pyproject.toml").read_text())
    sources = document.get("tool", {}).get("uv", {}).get("sources", {})
    members = _workspace_members()
    directories = [REPO_ROOT / stage.directory]
    for name, source in sorted(sources.items()):
        if isinstance(source, dict) and source.get("workspace"):
            if name not in members:
                raise BuildError(f"{stage.distribution}: {name} is not a workspace member")
            directories.append(members[name])
    return directories


def _workspace_members() -> dict[str, Path]:
    root = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    members = {}
    for member in root["tool"]["uv"]["workspace"]["members"]:
        path = REPO_ROOT / member
        document = tomllib.loads((path / "pyproject.toml").read_text())
        members[str(document["project"]["name"])] = path
    return members


def source_fingerprint(stage: Stage) -> str:
    """SHA-256 over everything an artifact is built from: the lock and the shipped sources.

    The program compares it with the artifact's manifest, so a zip built before a source
    (or the lock) changed is refused instead of deployed.
    """
    files = [REPO_ROOT / "uv.lock"]
    for directory in workspace_dependencies(stage):
        files.append(directory / "pyproject.toml")
        files.extend(_tree_files(directory / "src"))
    if stage.image:
        files.extend(REPO_ROOT / stage.directory / name for name in IMAGE_FILES)
    digest = hashlib.sha256()
    for path in sorted(files):
        relative = path.relative_to(REPO_ROOT).as_posix()
        digest.update(f"{relative}\0{file_sha256(path)}\n".encode())
    return digest.hexdigest()


def _tree_files(root: Path) -> Iterator[Path]:
    for directory, subdirectories, files in os.walk(root):
        subdirectories[:] = sorted(d for d in subdirectories if d != "__pycache__")
        for name in sorted(files):
            if not name.endswith(_DROPPED_SUFFIXES):
                yield Path(directory) / name


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# -- installing for the Lambda runtime ---------------------------------------------------


def _uv() -> str:
    found = os.environ.get("UV") or shutil.which("uv")
    if not found:
        raise BuildError("uv is not on PATH; run the build through `nox -s build`")
    return found


def _run(command: Sequence[str], what: str) -> None:
    result = subprocess.run(  # noqa: S603 -- a fixed uv command line, no shell
        list(command), cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise BuildError(f"{what} failed ({result.returncode}):\n{result.stderr.strip()}")


def install_tree(stage: Stage, work: Path) -> Path:
    """Install ``stage`` and its locked dependencies for Python 3.12 / arm64 under ``work``."""
    uv = _uv()
    shutil.rmtree(work, ignore_errors=True)
    wheels, site = work / "wheels", work / "site"
    wheels.mkdir(parents=True)
    requirements = work / "requirements.txt"
    _run(
        [
            uv,
            "export",
            "--frozen",
            "--package",
            stage.distribution,
            "--no-default-groups",
            "--no-emit-workspace",
            "--no-header",
            "--format",
            "requirements.txt",
            "--output-file",
            str(requirements),
        ],
        f"{stage.distribution}: uv export",
    )
    for directory in workspace_dependencies(stage):
        _run(
            [uv, "build", "--wheel", "--quiet", "--out-dir", str(wheels), str(directory)],
            f"{stage.distribution}: uv build {directory.relative_to(REPO_ROOT)}",
        )
    target = [
        "--target",
        str(site),
        "--python-version",
        PYTHON_VERSION,
        "--python-platform",
        PYTHON_PLATFORM,
        "--only-binary",
        ":all:",
        "--no-deps",
        "--quiet",
    ]
    # The export is the whole locked set, hashes included (uv checks them); --no-deps
    # keeps the resolver from choosing anything the lock did not.
    _run([uv, "pip", "install", *target, "-r", str(requirements)], "uv pip install (locked)")
    _run(
        [uv, "pip", "install", *target, *sorted(str(w) for w in wheels.glob("*.whl"))],
        "uv pip install (workspace wheels)",
    )
    strip_tree(site)
    if not (site / stage.import_name / "__init__.py").is_file():
        raise BuildError(f"{stage.distribution}: {stage.import_name} is missing from the build")
    return site


def strip_tree(site: Path) -> None:
    """Remove byte code, tests, scripts and machine paths from an installed tree."""
    for name in _DROPPED_TOP_LEVEL:
        shutil.rmtree(site / name, ignore_errors=True)
    for directory, subdirectories, files in os.walk(site):
        for name in list(subdirectories):
            if name in _DROPPED_DIRECTORIES:
                shutil.rmtree(Path(directory) / name)
                subdirectories.remove(name)
        for name in files:
            path = Path(directory) / name
            if name.endswith(_DROPPED_SUFFIXES):
                path.unlink()
            elif name in _DROPPED_DIST_INFO and directory.endswith(".dist-info"):
                path.unlink()
                _drop_record_line(Path(directory) / "RECORD", name)


def _drop_record_line(record: Path, file_name: str) -> None:
    if record.is_file():
        lines = record.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [line for line in lines if not line.split(",", 1)[0].endswith(f"/{file_name}")]
        record.write_text("".join(kept), encoding="utf-8")


# -- the deterministic zip ---------------------------------------------------------------


def tree_entries(root: Path) -> list[tuple[str, Path]]:
    """``(archive name, path)`` of every file under ``root``, sorted by archive name."""
    entries = []
    for directory, subdirectories, files in os.walk(root):
        subdirectories.sort()
        for name in files:
            path = Path(directory) / name
            entries.append((path.relative_to(root).as_posix(), path))
    return sorted(entries)


def unzipped_size(entries: Iterable[tuple[str, Path]]) -> int:
    """Bytes the entries take once unzipped (what Lambda's limit counts)."""
    return sum(path.stat().st_size for _, path in entries)


def check_unzipped_size(
    label: str, entries: list[tuple[str, Path]], limit: int = LAMBDA_UNZIPPED_LIMIT
) -> int:
    """The unzipped size; BuildError naming the largest top-level parts when over ``limit``."""
    total = unzipped_size(entries)
    if total > limit:
        by_part: dict[str, int] = {}
        for name, path in entries:
            part = name.split("/", 1)[0]
            by_part[part] = by_part.get(part, 0) + path.stat().st_size
        largest = sorted(by_part.items(), key=lambda item: -item[1])[:5]
        parts = ", ".join(f"{part} {size / 1e6:.1f} MB" for part, size in largest)
        raise BuildError(
            f"{label}: {total / 1e6:.1f} MB unzipped, over Lambda's "
            f"{limit / 1e6:.1f} MB limit (largest: {parts})"
        )
    return total


def _mode(path: Path) -> int:
    executable = path.stat().st_mode & stat.S_IXUSR
    return (stat.S_IFREG | (0o755 if executable else 0o644)) << 16


def write_deterministic_zip(entries: list[tuple[str, Path]], destination: Path) -> str:
    """Write ``entries`` to ``destination`` byte-for-byte reproducibly; return its SHA-256."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".partial")
    with zipfile.ZipFile(partial, "w") as archive:
        for name, path in entries:
            info = zipfile.ZipInfo(name, date_time=FIXED_ZIP_TIME)
            info.create_system = 3  # Unix, so external_attr carries the mode
            info.external_attr = _mode(path)
            info.compress_type = zipfile.ZIP_DEFLATED
            with path.open("rb") as source, archive.open(info, "w", force_zip64=True) as target:
                shutil.copyfileobj(source, target, 1 << 20)
    partial.replace(destination)
    return file_sha256(destination)


# -- the image context -------------------------------------------------------------------


def write_image_context(stage: Stage, site: Path, context: Path) -> str:
    """Copy the Dockerfile, .dockerignore and ``site`` into ``context``; return its digest.

    Every mtime is pinned (docker copies them into the layer), so the same sources give
    the same context digest and the same layers.
    """
    shutil.rmtree(context, ignore_errors=True)
    context.mkdir(parents=True)
    for name in IMAGE_FILES:
        source = REPO_ROOT / stage.directory / name
        if not source.is_file():
            raise BuildError(f"{stage.distribution}: {source.relative_to(REPO_ROOT)} is missing")
        shutil.copyfile(source, context / name)
    shutil.copytree(site, context / "site-packages")
    # The Dockerfile copies scratch/ to give /scratch its owner; git cannot hold an
    # empty directory, so the build makes it.
    (context / "scratch").mkdir()
    (context / "scratch" / ".keep").write_bytes(b"")
    digest = hashlib.sha256()
    for name, path in tree_entries(context):
        path.chmod(_mode(path) >> 16 & 0o777)
        os.utime(path, (FIXED_EPOCH, FIXED_EPOCH))
        digest.update(f"{name}\0{_mode(path):o}\0{file_sha256(path)}\n".encode())
    for directory, _, _ in os.walk(context):
        os.utime(directory, (FIXED_EPOCH, FIXED_EPOCH))
    return digest.hexdigest()


# -- one stage, end to end ---------------------------------------------------------------


@dataclass(frozen=True)
class BuildResult:
    """What building one stage produced."""

    stage: str
    zip_path: Path
    sha256: str
    zip_bytes: int
    unzipped_bytes: int
    source_fingerprint: str
    image_digest: str | None = None


def build_stage(
    stage: Stage,
    dist: Path = DIST_DIR,
    work_root: Path | None = None,
    *,
    limit: int = LAMBDA_UNZIPPED_LIMIT,
) -> BuildResult:
    """Build ``stage``'s zip (and image context) into ``dist``; write the manifests.

    BuildError, before any zip is written, when the tree is over ``limit`` unzipped.
    """
    work = (work_root or dist / ".work") / stage.name
    try:
        return _build(stage, dist, work, limit)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        with contextlib.suppress(OSError):
            work.parent.rmdir()  # only when no other stage's work is left in it


def _build(stage: Stage, dist: Path, work: Path, limit: int) -> BuildResult:
    fingerprint = source_fingerprint(stage)
    site = install_tree(stage, work)
    # The manifest vouches that the zip holds these sources: an edit saved while the
    # wheels were built would make that a lie.
    if source_fingerprint(stage) != fingerprint:
        raise BuildError(f"{stage.distribution}: its sources changed during the build; build again")
    entries = tree_entries(site)
    unzipped = check_unzipped_size(stage.distribution, entries, limit)
    sha256 = write_deterministic_zip(entries, stage.zip_path(dist))
    zip_bytes = stage.zip_path(dist).stat().st_size
    _write_json(
        stage.zip_manifest_path(dist),
        {
            "format": MANIFEST_FORMAT,
            "distribution": stage.distribution,
            "version": stage.version,
            "python": PYTHON_VERSION,
            "platform": PYTHON_PLATFORM,
            "sha256": sha256,
            "zip_bytes": zip_bytes,
            "unzipped_bytes": unzipped,
            "files": len(entries),
            "source_fingerprint": fingerprint,
        },
    )
    image_digest = None
    if stage.image:
        image_digest = write_image_context(stage, site, stage.image_context_path(dist))
        _write_json(
            stage.image_manifest_path(dist),
            {
                "format": MANIFEST_FORMAT,
                "distribution": stage.distribution,
                "version": stage.version,
                "context_sha256": image_digest,
                "source_fingerprint": fingerprint,
            },
        )
    return BuildResult(
        stage.name, stage.zip_path(dist), sha256, zip_bytes, unzipped, fingerprint, image_digest
    )


def _write_json(path: Path, document: dict[str, object]) -> None:
    path.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def select(names: Sequence[str]) -> list[Stage]:
    """The stages named (all when none); BuildError naming the known ones otherwise."""
    unknown = sorted(set(names) - set(STAGES))
    if unknown:
        raise BuildError(f"unknown stage(s) {unknown}; known: {sorted(STAGES)}")
    return [STAGES[name] for name in (names or list(STAGES))]


def main(argv: Sequence[str]) -> int:
    """``python -m infra.build_artifacts [--verify-determinism] [STAGE ...]``."""
    parser = argparse.ArgumentParser(prog="nox -s build --", description=__doc__.splitlines()[0])
    parser.add_argument("stages", nargs="*", help=f"default: all of {sorted(STAGES)}")
    parser.add_argument(
        "--verify-determinism",
        action="store_true",
        help="build each stage a second time in a scratch directory and compare the SHA-256",
    )
    args = parser.parse_args(argv)
    try:
        for stage in select(args.stages):
            result = build_stage(stage)
            line = (
                f"{result.zip_path.relative_to(REPO_ROOT)}: {result.zip_bytes / 1e6:.1f} MB "
                f"zipped, {result.unzipped_bytes / 1e6:.1f} MB unzipped "
                f"({result.unzipped_bytes / LAMBDA_UNZIPPED_LIMIT:.0%} of Lambda's limit), "
                f"sha256 {result.sha256}"
            )
            if result.image_digest:
                line += f"; image context sha256 {result.image_digest}"
            print(line, flush=True)
            if args.verify_determinism:
                scratch = DIST_DIR / ".determinism"
                again = build_stage(stage, dist=scratch, work_root=scratch / ".work")
                if again.source_fingerprint != result.source_fingerprint:
                    raise BuildError(
                        f"{stage.distribution}: its sources changed between the two builds; "
                        "nothing to compare, build again"
                    )
                same = again.sha256 == result.sha256 and again.image_digest == result.image_digest
                print(f"  rebuilt: sha256 {again.sha256} -> {'same' if same else 'DIFFERENT'}")
                shutil.rmtree(scratch, ignore_errors=True)
                if not same:
                    raise BuildError(f"{stage.distribution}: two builds differ")
    except BuildError as error:
        print(f"build failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
