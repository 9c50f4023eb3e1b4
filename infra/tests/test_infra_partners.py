"""Partner onboarding is the stack config: each partner's key, plan, schedule, retention
rule, catalog partition and (with an account id) role appear with it and vanish with it."""

from __future__ import annotations

import json
from typing import Any

from infra.tests.pulumi_harness import ACCOUNT, ProgramRun


def _partner_names(run: ProgramRun, owner: str) -> set[str]:
    """Names of resources that belong to one partner (or client) id."""
    return {
        name
        for name in run.names()
        if any(name.endswith(f"-{owner}{suffix}") for suffix in ("", "-key", "-policy"))
    }


def test_every_partner_has_its_resources(any_run: ProgramRun, request) -> None:
    prefix = f"ryuzen-{any_run.stack}"
    values = request.getfixturevalue(f"{any_run.stack}_values")
    for partner in values["ryuzen-telemetry:partners"]:
        p = partner["id"]
        expected = {
            f"{prefix}-keys-partner-{p}",
            f"{prefix}-api-plan-partner-{p}",
            f"{prefix}-api-plan-partner-{p}-key",
            f"{prefix}-bundle-{p}",
        }
        if "awsAccountId" in partner:
            expected |= {f"{prefix}-access-{p}", f"{prefix}-access-{p}-policy"}
        assert _partner_names(any_run, p) == expected, p
        schedule = any_run.named(f"{prefix}-bundle-{p}").inputs
        assert schedule["scheduleExpression"] == "cron(0 6 1 * ? *)"
        command = json.loads(schedule["target"]["input"])["containerOverrides"][0]["command"]
        assert command == ["build", "--partner", p]


def test_removing_a_partner_removes_exactly_its_resources(
    dev_run: ProgramRun, reduced_dev_run: ProgramRun
) -> None:
    removed = dev_run.names() - reduced_dev_run.names()
    assert removed == _partner_names(dev_run, "nimbus-ai") | _partner_names(dev_run, "batch-runner")
    assert reduced_dev_run.names() <= dev_run.names()  # nothing else is renamed or added
    lifecycle = {
        r.inputs["bucket"]: [rule["id"] for rule in r.inputs["rules"]]
        for r in reduced_dev_run.of_type(
            "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
        )
    }
    assert lifecycle[reduced_dev_run.outputs["buckets"]["bundles"]] == [
        "abandoned-uploads",
        "bundle-retention-acme",
        "bundle-retention-orbital",
    ]
    table = reduced_dev_run.of_type("aws:glue/catalogTable:CatalogTable")[0].inputs
    assert table["parameters"]["projection.partner.values"] == "acme,orbital"
    stack_config = json.loads(
        reduced_dev_run.named("ryuzen-dev-ingest-fn").inputs["environment"]["variables"][
            "STACK_CONFIG"
        ]
    )
    assert [p["id"] for p in stack_config["partners"]] == ["acme", "orbital"]


def _role_policy(run: ProgramRun, name: str) -> list[dict[str, Any]]:
    return json.loads(run.named(name).inputs["policy"])["Statement"]


def test_cross_account_roles_only_with_an_account_id(any_run: ProgramRun, request) -> None:
    prefix = f"ryuzen-{any_run.stack}"
    values = request.getfixturevalue(f"{any_run.stack}_values")
    with_account = {
        p["id"]: p["awsAccountId"]
        for p in values["ryuzen-telemetry:partners"]
        if "awsAccountId" in p
    }
    assert set(any_run.outputs["partnerRoleArns"]) == set(with_account)
    bundles = any_run.outputs["buckets"]["bundles"]
    for partner, account in with_account.items():
        role = any_run.named(f"{prefix}-access-{partner}")
        assert account != ACCOUNT
        (trust,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
        assert trust["Principal"] == {"AWS": f"arn:aws:iam::{account}:root"}
        assert role.inputs["maxSessionDuration"] == 3600
        listing, reading, decrypt = _role_policy(any_run, f"{prefix}-access-{partner}-policy")
        assert listing["Action"] == ["s3:ListBucket"]
        assert listing["Resource"] == [f"arn:aws:s3:::{bundles}"]
        assert listing["Condition"] == {
            "StringLike": {"s3:prefix": [f"{partner}/", f"{partner}/*"]}
        }
        assert reading["Action"] == ["s3:GetObject"]
        assert reading["Resource"] == [f"arn:aws:s3:::{bundles}/{partner}/*"]
        assert decrypt["Action"] == ["kms:Decrypt"]


def test_partner_role_arns_are_stack_outputs(dev_run: ProgramRun) -> None:
    roles = dev_run.outputs["partnerRoleArns"]
    assert sorted(roles) == ["acme", "orbital"]
    assert all(arn.startswith(f"arn:aws:iam::{ACCOUNT}:role/") for arn in roles.values())
