"""The program and the stages agree: each function gets exactly the environment its stage's
settings model reads (the names the local stack sets too), its handler exists, and
cleanup listens for the event the bundle stage emits.

The stages are read as source (``ast``), not imported: the infra venv holds only the
contracts, as the Pulumi program's does.
"""

from __future__ import annotations

import ast
import json

import pytest
from ryuzen_contracts import bundle_delivered

from infra import program
from infra.tests.pulumi_harness import REPO_ROOT, ProgramRun

STAGES = REPO_ROOT / "stages"
# function (as in the program's resource names) -> (settings module, settings class)
SETTINGS = {
    "ingest": ("ingest/src/ryuzen_ingest/settings.py", "IngestSettings"),
    "sanitize": ("sanitize/src/ryuzen_sanitize/sanitize_handler.py", "SanitizeSettings"),
    "analytics": ("analytics/src/ryuzen_analytics/analytics_handler.py", "AnalyticsSettings"),
    "bundle-pull": ("bundle/src/ryuzen_bundle/pull_settings.py", "PullSettings"),
    "cleanup-delivered": ("cleanup/src/ryuzen_cleanup/cleanup_settings.py", "CleanupSettings"),
    "cleanup-sweep": ("cleanup/src/ryuzen_cleanup/cleanup_settings.py", "SweepSettings"),
    "bundle-task": ("bundle/src/ryuzen_bundle/bundle_settings.py", "BundleSettings"),
}
# Variables only the local stack sets: file-based keys instead of KMS, and the verifying
# presign proxy moto needs (DESIGN §6).
LOCAL_ONLY = {"SIGNING_KEY_FILE", "SIGNING_PUBLIC_KEY_FILE", "PRESIGN_ENDPOINT_URL"}


def settings_variables(module: str, class_name: str) -> dict[str, bool]:
    """``{VARIABLE: required}`` of a StageSettings subclass, read from its source."""
    tree = ast.parse((STAGES / module).read_text(encoding="utf-8"))
    (cls,) = [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef) and n.name == class_name]
    variables = {}
    for statement in cls.body:
        if not (isinstance(statement, ast.AnnAssign) and isinstance(statement.value, ast.Call)):
            continue
        keywords = {k.arg: k.value for k in statement.value.keywords}
        alias = keywords.get("alias")
        if isinstance(alias, ast.Constant):
            variables[alias.value] = "default" not in keywords and not statement.value.args
    assert variables, f"no Field(alias=...) found in {class_name}"
    return variables


def _environment(run: ProgramRun, function: str) -> dict[str, str]:
    prefix = f"ryuzen-{run.stack}"
    if function == "bundle-task":
        task = run.named(f"{prefix}-bundle-task").inputs
        (container,) = json.loads(task["containerDefinitions"])
        return {item["name"]: item["value"] for item in container["environment"]}
    return dict(run.named(f"{prefix}-{function}-fn").inputs["environment"]["variables"])


@pytest.mark.parametrize("function", list(SETTINGS))
def test_each_function_gets_exactly_what_its_settings_read(
    any_run: ProgramRun, function: str
) -> None:
    declared = settings_variables(*SETTINGS[function])
    environment = _environment(any_run, function)
    assert set(environment) == set(declared) - LOCAL_ONLY
    missing = [name for name, required in declared.items() if required and name not in environment]
    assert not missing
    for name, value in environment.items():
        assert value, name


def test_the_local_stack_sets_the_same_names() -> None:
    source = REPO_ROOT / "tools/src/ryuzen_tools/local_stack/environment.py"
    tree = ast.parse(source.read_text(encoding="utf-8"))
    (function,) = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.FunctionDef) and n.name == "stage_environment"
    ]
    local = {
        key.value
        for node in ast.walk(function)
        if isinstance(node, ast.Dict)
        for key in node.keys
        if isinstance(key, ast.Constant) and isinstance(key.value, str)
    }
    stage_names = set().union(*(settings_variables(*where) for where in SETTINGS.values()))
    # Every stage variable the local stack sets is one the program sets (or local-only).
    deployed = {
        "RAW_BUCKET",
        "AUDIT_TABLE",
        "STACK_CONFIG",
        "IDEMPOTENCY_TABLE",
        "API_KEY_CLIENTS",
        "SANITIZED_BUCKET",
        "QUARANTINE_BUCKET",
        "QUARANTINE_KMS_KEY_ID",
        "QUARANTINE_HASH_KMS_KEY_ID",
        "ANALYTICS_BUCKET",
        "BUNDLES_BUCKET",
        "EVENT_BUS_NAME",
        "API_KEY_PARTNERS",
        "SIGNING_KMS_KEY_ID",
        "PRESIGN_ROLE_ARN",
        "BUNDLE_WORK_DIR",
    }
    assert (local & stage_names) - LOCAL_ONLY <= deployed
    assert deployed <= stage_names


@pytest.mark.parametrize("function", list(program.HANDLERS))
def test_each_handler_exists(function: str) -> None:
    stage, handler = program.HANDLERS[function]
    module, _, name = handler.rpartition(".")
    package, _, file_name = module.rpartition(".")
    path = STAGES / stage / "src" / package / f"{file_name}.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    assert name in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}, handler


def test_cleanup_listens_for_what_the_bundle_stage_emits(any_run: ProgramRun) -> None:
    # Both stages take the event's names from the contracts; the rule must match them.
    emitter = (STAGES / "bundle/src/ryuzen_bundle/bundle_event.py").read_text(encoding="utf-8")
    assert "from ryuzen_contracts.bundle_delivered import" in emitter
    rule = any_run.named(f"ryuzen-{any_run.stack}-cleanup-delivered-rule").inputs
    assert json.loads(rule["eventPattern"]) == {
        "source": [bundle_delivered.EVENT_SOURCE],
        "detail-type": [bundle_delivered.DETAIL_TYPE],
    }
    bus = any_run.named(f"ryuzen-{any_run.stack}-bundle-events").outputs["name"]
    assert rule["eventBusName"] == bus
    assert _environment(any_run, "bundle-task")["EVENT_BUS_NAME"] == bus


def test_the_bundle_task_runs_the_bundle_entry_point(any_run: ProgramRun) -> None:
    assert (STAGES / "bundle/src/ryuzen_bundle/__main__.py").is_file()
    dockerfile = (STAGES / "bundle/Dockerfile").read_text(encoding="utf-8")
    assert 'ENTRYPOINT ["python", "-m", "ryuzen_bundle"]' in dockerfile
    # COPY only: it builds for arm64 on any machine, reproducibly.
    assert not [line for line in dockerfile.splitlines() if line.strip().startswith("RUN")]
