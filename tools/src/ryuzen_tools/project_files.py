"""Where the project's Pulumi files are, and what a stack file says beyond our namespace.

The ``ryuzen-telemetry:`` keys are read by the contracts package
(``ryuzen_contracts.stack_config``); this module only finds the project directory and reads
the one provider setting the local stack also needs, ``aws:region``.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from ryuzen_contracts.stack_config import StackConfig, load_stack_config, stack_file

PROJECT_FILE = "Pulumi.yaml"
DEFAULT_REGION = "eu-west-1"


class ProjectNotFoundError(FileNotFoundError):
    """No directory at or above the start holds ``Pulumi.yaml``."""


def find_project_dir(start: Path | None = None) -> Path:
    """The nearest directory at or above ``start`` (default: the cwd) holding ``Pulumi.yaml``."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / PROJECT_FILE).is_file():
            return directory
    raise ProjectNotFoundError(f"no {PROJECT_FILE} in {here} or any parent directory")


def stack_region(path: Path) -> str:
    """The stack file's ``aws:region``, or ``eu-west-1`` when it sets none."""
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    config = document.get("config") if isinstance(document, dict) else None
    region = config.get("aws:region") if isinstance(config, dict) else None
    return region if isinstance(region, str) and region else DEFAULT_REGION


def load_stack(project_dir: Path | None, stack: str) -> tuple[StackConfig, str, Path]:
    """The stack's config, its region and the stack file's path."""
    directory = project_dir or find_project_dir()
    path = stack_file(directory, stack)
    if not path.is_file():
        raise FileNotFoundError(f"stack file {path} does not exist")
    return load_stack_config(path), stack_region(path), path
