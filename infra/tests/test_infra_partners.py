"""Partner onboarding is the stack config: each partner's key, plan, schedule, retention
rule, catalog partition and (with an account id) role appear with it and vanish with it,
while the bundle bucket's backstop rule stays to expire what it left behind."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from infra.tests.pulumi_harness import ACCOUNT, ProgramRun

PARTNERS = "ryuzen-telemetry:partners"
CLIENTS = "ryuzen-telemetry:ingestClients"


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
        "bundle-backstop",
    ]
    table = reduced_dev_run.of_type("aws:glue/catalogTable:CatalogTable")[0].inputs
    assert table["parameters"]["projection.partner.values"] == "acme,orbital"
    stack_config = json.loads(
        reduced_dev_run.named("ryuzen-dev-ingest-fn").inputs["environment"]["variables"][
            "STACK_CONFIG"
        ]
    )
    assert [p["id"] for p in stack_config["partners"]] == ["acme", "orbital"]


def _without_partner(values: dict[str, Any], partner: str) -> dict[str, Any]:
    """The stack config with ``partner`` removed, and from every client's allowed list."""
    changed = dict(values)
    changed[PARTNERS] = [p for p in values[PARTNERS] if p["id"] != partner]
    changed[CLIENTS] = [
        {**c, "allowedPartners": [p for p in c["allowedPartners"] if p != partner]}
        for c in values[CLIENTS]
    ]
    assert all(c["allowedPartners"] for c in changed[CLIENTS])
    return changed


def _bundle_rules(run: ProgramRun) -> dict[str, dict[str, Any]]:
    bundles = run.outputs["buckets"]["bundles"]
    (lifecycle,) = [
        r.inputs
        for r in run.of_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
        if r.inputs["bucket"] == bundles
    ]
    return {rule["id"]: rule for rule in lifecycle["rules"]}


def test_removing_a_partner_with_an_account_removes_its_role_key_plan_schedule_and_rule(
    run: Callable[..., ProgramRun], dev_run: ProgramRun, dev_values: dict[str, Any]
) -> None:
    # Given acme, a partner with an AWS account id (so a cross-account role)
    (acme,) = [p for p in dev_values[PARTNERS] if p["id"] == "acme"]
    assert acme["awsAccountId"]
    prefix = "ryuzen-dev"
    acme_resources = {
        f"{prefix}-access-acme",  # the cross-account role ...
        f"{prefix}-access-acme-policy",  # ... and its policy
        f"{prefix}-keys-partner-acme",  # the API key
        f"{prefix}-api-plan-partner-acme",  # the usage plan ...
        f"{prefix}-api-plan-partner-acme-key",  # ... and its key binding
        f"{prefix}-bundle-acme",  # the monthly schedule
    }
    assert acme_resources <= dev_run.names()
    assert "bundle-retention-acme" in _bundle_rules(dev_run)

    # When it is removed from the stack config
    values = _without_partner(dev_values, "acme")
    without = run(values, "dev")

    # Then exactly its resources vanish, its retention rule with them ...
    assert dev_run.names() - without.names() == acme_resources
    assert without.names() <= dev_run.names()
    assert "acme" not in without.outputs["partnerRoleArns"]
    assert "acme" not in without.outputs["apiKeyIds"]["partners"]
    assert "acme" not in without.outputs["bundleSchedules"]
    rules = _bundle_rules(without)
    assert "bundle-retention-acme" not in rules
    # ... and no role may reach its prefix any more,
    bundles = without.outputs["buckets"]["bundles"]
    for policy, _ in without.policies():
        assert f"{bundles}/acme/" not in policy.inputs["policy"], policy.name
    # ... while the bucket-wide backstop remains, so its bundles under acme/ still expire.
    backstop = rules["bundle-backstop"]
    assert backstop["filter"] == {"prefix": ""}
    remaining = [p.get("bundleRetentionDays", 90) for p in values[PARTNERS]]
    assert backstop["expiration"]["days"] == max(remaining) == 60


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
