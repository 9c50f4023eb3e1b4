"""The build step: deterministic zips, the 250 MB check, what is stripped, and one real
build of a stage for Python 3.12 on manylinux aarch64, twice."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from infra import build_artifacts
from infra.build_artifacts import (
    BuildError,
    check_unzipped_size,
    strip_tree,
    tree_entries,
    write_deterministic_zip,
)


def _write_tree(root: Path, files: dict[str, bytes], *, reverse: bool, mtime: int) -> Path:
    for name in sorted(files, reverse=reverse):  # creation order differs between trees
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(files[name])
        path.chmod(0o600 if reverse else 0o644)  # neither executable: both become 0644
        os.utime(path, (mtime, mtime))
    return root


FILES = {
    "pkg/__init__.py": b"VALUE = 1\n",
    "pkg/data/table.json": b"{}\n",
    "pkg-1.0.dist-info/RECORD": b"pkg/__init__.py,,\n",
    "z_last.py": b"",
}


def test_the_same_files_zip_to_the_same_bytes(tmp_path: Path) -> None:
    # Given the same files written in another order, with other mtimes and modes
    first = _write_tree(tmp_path / "a", FILES, reverse=False, mtime=1_700_000_000)
    second = _write_tree(tmp_path / "b", FILES, reverse=True, mtime=1_800_000_000)
    # When both are zipped
    one = write_deterministic_zip(tree_entries(first), tmp_path / "one.zip")
    two = write_deterministic_zip(tree_entries(second), tmp_path / "two.zip")
    # Then the archives are identical, entries sorted, timestamps fixed
    assert one == two
    with zipfile.ZipFile(tmp_path / "one.zip") as archive:
        names = archive.namelist()
        assert names == sorted(FILES)
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert {info.external_attr >> 16 & 0o777 for info in archive.infolist()} == {0o644}


def test_a_changed_file_changes_the_hash(tmp_path: Path) -> None:
    first = _write_tree(tmp_path / "a", FILES, reverse=False, mtime=0)
    changed = _write_tree(
        tmp_path / "b", {**FILES, "pkg/__init__.py": b"VALUE = 2\n"}, reverse=False, mtime=0
    )
    assert write_deterministic_zip(tree_entries(first), tmp_path / "1.zip") != (
        write_deterministic_zip(tree_entries(changed), tmp_path / "2.zip")
    )


def test_executables_keep_their_bit(tmp_path: Path) -> None:
    tree = _write_tree(tmp_path / "t", {"lib/native.so": b"\x7fELF"}, reverse=False, mtime=0)
    (tree / "lib/native.so").chmod(0o755)
    write_deterministic_zip(tree_entries(tree), tmp_path / "x.zip")
    with zipfile.ZipFile(tmp_path / "x.zip") as archive:
        assert archive.infolist()[0].external_attr >> 16 & 0o777 == 0o755


def test_a_tree_over_the_limit_is_refused_naming_its_largest_parts(tmp_path: Path) -> None:
    tree = _write_tree(
        tmp_path / "t",
        {"polars/lib.so": b"x" * 3000, "boto3/x.py": b"y" * 1000, "small.py": b"z"},
        reverse=False,
        mtime=0,
    )
    entries = tree_entries(tree)
    assert check_unzipped_size("ryuzen-x", entries, limit=4001) == 4001
    with pytest.raises(BuildError) as refused:
        check_unzipped_size("ryuzen-x", entries, limit=4000)
    message = str(refused.value)
    assert message.startswith("ryuzen-x: 0.0 MB unzipped, over Lambda's")
    assert message.index("polars") < message.index("boto3")


def test_strip_tree_drops_what_must_not_ship(tmp_path: Path) -> None:
    site = _write_tree(
        tmp_path / "site",
        {
            "pkg/__init__.py": b"",
            "pkg/__pycache__/__init__.cpython-311.pyc": b"",
            "pkg/tests/test_pkg.py": b"",
            "pkg/stale.pyc": b"",
            "bin/tool": b"#!/machine/python\n",
            "pkg-1.0.dist-info/direct_url.json": b'{"url": "file:///home/me/wheel.whl"}',
            "pkg-1.0.dist-info/uv_cache.json": b'{"timestamp": 1}',
            "pkg-1.0.dist-info/RECORD": (
                b"pkg/__init__.py,,\npkg-1.0.dist-info/direct_url.json,,\n"
                b"pkg-1.0.dist-info/uv_cache.json,,\n"
            ),
        },
        reverse=False,
        mtime=0,
    )
    strip_tree(site)
    assert [name for name, _ in tree_entries(site)] == [
        "pkg-1.0.dist-info/RECORD",
        "pkg/__init__.py",
    ]
    assert (site / "pkg-1.0.dist-info/RECORD").read_text() == "pkg/__init__.py,,\n"


def test_unknown_stages_are_named() -> None:
    with pytest.raises(BuildError, match=r"unknown stage\(s\) \['nope'\]; known: \["):
        build_artifacts.select(["nope"])


@pytest.fixture(scope="module")
def two_real_builds(tmp_path_factory: pytest.TempPathFactory):
    """The cleanup stage (the smallest zip) built twice, in two scratch directories."""
    stage = build_artifacts.STAGES["cleanup"]
    results = []
    for attempt in ("first", "second"):
        dist = tmp_path_factory.mktemp(attempt)
        results.append((build_artifacts.build_stage(stage, dist=dist), dist))
    return stage, results


def test_a_real_build_is_deterministic(two_real_builds) -> None:
    _, ((first, _), (second, _)) = two_real_builds
    assert first.sha256 == second.sha256
    assert first.zip_path.read_bytes() == second.zip_path.read_bytes()


def test_a_real_build_targets_python312_on_arm64(two_real_builds) -> None:
    stage, ((result, dist), _) = two_real_builds
    assert result.zip_path == dist / f"ryuzen-cleanup-{stage.version}-arm64.zip"
    assert 0 < result.unzipped_bytes <= build_artifacts.LAMBDA_UNZIPPED_LIMIT
    with zipfile.ZipFile(result.zip_path) as archive:
        names = archive.namelist()
    assert "ryuzen_cleanup/cleanup_handler.py" in names
    assert "ryuzen_contracts/stack_config.py" in names
    assert any(n.endswith(".dist-info/METADATA") and n.startswith("ryuzen_cleanup-") for n in names)
    native = [n for n in names if n.endswith(".so")]
    assert native, "pydantic-core ships a native extension"
    assert all("cpython-312" in n and "aarch64" in n for n in native if "cpython" in n)
    assert not [n for n in names if "__pycache__" in n or "/tests/" in n or n.startswith("bin/")]


def test_a_real_build_is_refused_over_the_limit(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match=r"ryuzen-cleanup: .* over Lambda's"):
        build_artifacts.build_stage(build_artifacts.STAGES["cleanup"], dist=tmp_path, limit=1_000)
    assert not list(tmp_path.glob("*.zip"))
