"""Each function's (and the bundle task's) policy touches only its own buckets, prefixes,
tables and keys — compared grant by grant with what the stage's code does."""

from __future__ import annotations

from typing import Any

import pytest

from infra.tests.pulumi_harness import ProgramRun

Grant = tuple[str, str, Any]  # (action, bucket role, key pattern | listing condition)


def _bucket_roles(run: ProgramRun) -> dict[str, str]:
    return {name: role for role, name in run.outputs["buckets"].items()}


def _document(run: ProgramRun, policy_name: str) -> list[dict[str, Any]]:
    (document,) = [d for p, d in run.policies() if p.name == policy_name]
    return list(document["Statement"])


def s3_grants(run: ProgramRun, policy_name: str) -> set[Grant]:
    roles = _bucket_roles(run)
    grants: set[Grant] = set()
    for statement in _document(run, policy_name):
        for action in statement["Action"]:
            if not action.startswith("s3:"):
                continue
            for resource in statement["Resource"]:
                bucket, _, key = resource.removeprefix("arn:aws:s3:::").partition("/")
                if action == "s3:ListBucket":
                    assert not key, resource
                    condition = statement.get("Condition")
                    listed = tuple(condition["StringLike"]["s3:prefix"]) if condition else None
                    grants.add((action, roles[bucket], listed))
                else:
                    assert key, f"{action} on a whole bucket in {policy_name}"
                    grants.add((action, roles[bucket], key))
    return grants


def kms_grants(run: ProgramRun, policy_name: str) -> set[tuple[str, str, frozenset[str]]]:
    roles = _bucket_roles(run)
    keys = {r.outputs["arn"]: r.name.rsplit("-", 2)[-2] for r in run.of_type("aws:kms/key:Key")}
    grants = set()
    for statement in _document(run, policy_name):
        for action in statement["Action"]:
            if not action.startswith("kms:"):
                continue
            (key,) = statement["Resource"]
            condition = statement.get("Condition")
            buckets = frozenset()
            if condition is not None:
                assert condition["StringEquals"] == {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}
                contexts = condition["StringLike"]["kms:EncryptionContext:aws:s3:arn"]
                buckets = frozenset(
                    roles[c.removeprefix("arn:aws:s3:::").removesuffix("/*")] for c in contexts
                )
            grants.add((action, keys[key], buckets))
    return grants


def table_grants(run: ProgramRun, policy_name: str) -> set[tuple[str, str]]:
    tables = {
        r.outputs["arn"]: r.name.rsplit("-", 1)[-1] for r in run.of_type("aws:dynamodb/table:Table")
    }
    return {
        (action, tables[resource])
        for statement in _document(run, policy_name)
        for action in statement["Action"]
        if action.startswith("dynamodb:")
        for resource in statement["Resource"]
    }


def _per_partner(partners: list[str], actions: list[str], suffix: str) -> set[Grant]:
    return {(a, "bundles", f"{p}/{suffix}") for p in partners for a in actions}


def expected_s3(function: str, partners: list[str]) -> set[Grant]:
    working_list_read = {
        ("s3:ListBucket", "analytics", ("analytics/events/*",)),
        ("s3:GetObject", "analytics", "analytics/events/*"),
        ("s3:ListBucket", "sanitized", ("sanitized/*",)),
        ("s3:GetObject", "sanitized", "sanitized/*"),
    }
    return {
        "ingest": {("s3:PutObject", "raw", "raw/*")},
        "sanitize": {
            ("s3:GetObject", "raw", "raw/*"),
            ("s3:DeleteObject", "raw", "raw/*"),
            ("s3:ListBucket", "raw", None),
            ("s3:PutObject", "sanitized", "sanitized/*"),
            ("s3:PutObject", "quarantine", "quarantine/*"),
        },
        "analytics": {
            ("s3:GetObject", "sanitized", "sanitized/*"),
            ("s3:PutObject", "analytics", "analytics/events/*"),
        },
        "bundle-task": working_list_read
        | _per_partner(
            partners,
            ["s3:PutObject", "s3:GetObject", "s3:GetObjectAttributes", "s3:AbortMultipartUpload"],
            "*",
        ),
        "bundle-pull": {("s3:ListBucket", "bundles", None)}
        | _per_partner(partners, ["s3:GetObject"], "*"),
        "cleanup-delivered": {
            ("s3:ListBucket", "sanitized", ("sanitized/*",)),
            ("s3:DeleteObject", "sanitized", "sanitized/*"),
            ("s3:ListBucket", "analytics", ("analytics/events/*",)),
            ("s3:DeleteObject", "analytics", "analytics/events/*"),
            ("s3:ListBucket", "bundles", None),
        }
        | _per_partner(partners, ["s3:GetObject", "s3:PutObject"], "*/deletion-receipt.dsse.json"),
        "cleanup-sweep": {
            ("s3:ListBucket", "raw", None),
            ("s3:DeleteObject", "raw", "*"),
            ("s3:ListBucket", "quarantine", None),
            ("s3:DeleteObject", "quarantine", "*"),
            # the partner-month folders only, to count months that outlived delivery
            ("s3:ListBucket", "sanitized", ("sanitized/*",)),
            ("s3:ListBucket", "analytics", ("analytics/events/*",)),
        },
    }[function]


W, R = ("kms:Decrypt", "kms:GenerateDataKey"), ("kms:Decrypt",)
# KmsSigner signs, and reads the public key once for the DSSE keyid.
SIGN = {(a, "signing", frozenset()) for a in ("kms:Sign", "kms:GetPublicKey")}
EXPECTED_KMS: dict[str, set[tuple[str, str, frozenset[str]]]] = {
    "ingest": {(a, "data", frozenset({"raw"})) for a in W},
    "sanitize": {(a, "data", frozenset({"raw", "sanitized"})) for a in W}
    | {(a, "quarantine", frozenset({"quarantine"})) for a in W}
    | {("kms:GenerateMac", "hash", frozenset())}  # the quarantined-value hash's secret
    | SIGN,
    "analytics": {(a, "data", frozenset({"sanitized", "analytics"})) for a in W},
    "bundle-task": {(a, "data", frozenset({"sanitized", "analytics"})) for a in R}
    | {(a, "bundles", frozenset({"bundles"})) for a in W}
    | SIGN,
    "bundle-pull": {("kms:GetPublicKey", "signing", frozenset())},
    "cleanup-delivered": {(a, "bundles", frozenset({"bundles"})) for a in W} | SIGN,
    "cleanup-sweep": set(),
}
EXPECTED_TABLES = {
    "ingest": {("dynamodb:PutItem", "audit")}
    | {
        (f"dynamodb:{a}", "idempotency") for a in ("GetItem", "PutItem", "UpdateItem", "DeleteItem")
    },
    "sanitize": {("dynamodb:PutItem", "audit")},
    "analytics": {("dynamodb:PutItem", "audit")},
    "bundle-task": {("dynamodb:GetItem", "audit"), ("dynamodb:PutItem", "audit")},
    "bundle-pull": {("dynamodb:GetItem", "audit")},
    "cleanup-delivered": {("dynamodb:GetItem", "audit"), ("dynamodb:PutItem", "audit")},
    "cleanup-sweep": {("dynamodb:PutItem", "audit")},
}
FUNCTIONS = list(EXPECTED_TABLES)


def _policy_name(run: ProgramRun, function: str) -> str:
    return f"ryuzen-{run.stack}-{function}-policy"


def _partners(run: ProgramRun, request: pytest.FixtureRequest) -> list[str]:
    values = request.getfixturevalue(f"{run.stack}_values")
    return [p["id"] for p in values["ryuzen-telemetry:partners"]]


@pytest.mark.parametrize("function", FUNCTIONS)
def test_s3_grants_are_exactly_the_stages_own(
    any_run: ProgramRun, function: str, request: pytest.FixtureRequest
) -> None:
    assert s3_grants(any_run, _policy_name(any_run, function)) == expected_s3(
        function, _partners(any_run, request)
    )


@pytest.mark.parametrize("function", FUNCTIONS)
def test_kms_grants_are_exactly_the_stages_own(any_run: ProgramRun, function: str) -> None:
    assert kms_grants(any_run, _policy_name(any_run, function)) == EXPECTED_KMS[function]


@pytest.mark.parametrize("function", FUNCTIONS)
def test_table_grants_are_exactly_the_stages_own(any_run: ProgramRun, function: str) -> None:
    assert table_grants(any_run, _policy_name(any_run, function)) == EXPECTED_TABLES[function]


def test_nothing_reads_quarantine(any_run: ProgramRun) -> None:
    quarantine = any_run.outputs["buckets"]["quarantine"]
    for policy, document in any_run.policies():
        for statement in document["Statement"]:
            if "s3:GetObject" in statement["Action"]:
                assert not any(quarantine in r for r in statement["Resource"]), policy.name


def test_the_bundle_task_announces_only_on_its_own_bus(any_run: ProgramRun) -> None:
    prefix = f"ryuzen-{any_run.stack}"
    bus = any_run.named(f"{prefix}-bundle-events").outputs["arn"]
    statements = _document(any_run, f"{prefix}-bundle-task-policy")
    (put,) = [s for s in statements if "events:PutEvents" in s["Action"]]
    assert put["Resource"] == [bus]


def test_a_removed_partner_loses_every_grant(reduced_dev_run: ProgramRun) -> None:
    for function in ("bundle-task", "bundle-pull", "cleanup-delivered"):
        grants = s3_grants(reduced_dev_run, _policy_name(reduced_dev_run, function))
        assert grants == expected_s3(function, ["acme", "orbital"])
