"""IAM across the stack: no wildcard actions, "*" resources only where AWS requires them,
trust policies that name exactly who may assume each role, and signing kept to signers."""

from __future__ import annotations

import json
from typing import Any

from infra.signing import SIGNER_TAG
from infra.tests.pulumi_harness import ACCOUNT, ProgramRun

# Every "*" resource the program grants, and why AWS leaves no narrower choice.
STAR_RESOURCE_EXCEPTIONS = {
    ("ecr:GetAuthorizationToken",): "ECR's registry login is not a resource-level action; "
    "the token alone reads nothing, ecr:BatchGetImage on the one repository decides that",
}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _allow_statements(run: ProgramRun) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for policy, document in run.policies():
        for statement in document["Statement"]:
            assert statement["Effect"] == "Allow", policy.name  # inline policies only allow
            found.append((policy.name, statement))
    return found


def test_no_statement_has_a_wildcard_action(any_run: ProgramRun) -> None:
    for policy, statement in _allow_statements(any_run):
        for action in _as_list(statement["Action"]):
            assert "*" not in action and "?" not in action, (policy, action)


def test_star_resources_only_where_aws_requires_them(any_run: ProgramRun) -> None:
    used = set()
    for policy, statement in _allow_statements(any_run):
        if "*" in _as_list(statement["Resource"]):
            actions = tuple(sorted(_as_list(statement["Action"])))
            assert actions in STAR_RESOURCE_EXCEPTIONS, (policy, actions)
            assert statement["Resource"] == ["*"], policy
            used.add(actions)
    # The list is exact: an exception nobody needs any more is removed from it.
    assert used == set(STAR_RESOURCE_EXCEPTIONS)


def test_resources_are_this_stacks_or_scoped_patterns(any_run: ProgramRun) -> None:
    # Wildcards inside an ARN stand only for keys, log streams or revisions of resources
    # the stack owns, never for a service, account or region.
    for policy, statement in _allow_statements(any_run):
        for resource in _as_list(statement["Resource"]):
            if resource == "*":
                continue
            parts = resource.split(":")
            assert parts[0] == "arn" and parts[1] == "aws", (policy, resource)
            assert "*" not in parts[2], (policy, resource)  # the service
            assert parts[3] in ("", "eu-west-1"), (policy, resource)
            assert parts[4] in ("", ACCOUNT), (policy, resource)


def _trust(run: ProgramRun, role_name: str) -> list[dict[str, Any]]:
    role = run.named(role_name)
    return json.loads(role.inputs["assumeRolePolicy"])["Statement"]


def test_every_role_trusts_exactly_one_principal(any_run: ProgramRun) -> None:
    prefix = f"ryuzen-{any_run.stack}"
    services = {
        "lambda.amazonaws.com",
        "apigateway.amazonaws.com",
        "ecs-tasks.amazonaws.com",
        "scheduler.amazonaws.com",
    }
    # Roles whose service states the source account: the confused-deputy guard is on.
    account_bound = {
        f"{prefix}-bundle-task-role",
        f"{prefix}-bundle-scheduler-role",
        f"{prefix}-cleanup-sweep-scheduler-role",
    }
    for role in any_run.of_type("aws:iam/role:Role"):
        (statement,) = _trust(any_run, role.name)
        assert statement["Effect"] == "Allow" and statement["Action"] == "sts:AssumeRole"
        principal = statement["Principal"]
        assert len(principal) == 1, role.name
        if "Service" in principal:
            assert principal["Service"] in services, role.name
            if role.name in account_bound:
                assert statement["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
            if principal["Service"] == "scheduler.amazonaws.com":
                assert role.name in account_bound
        else:
            # Only the presign role and the partners' roles trust an AWS principal.
            assert role.name.startswith(f"{prefix}-access-"), role.name


def test_the_presign_role_trusts_only_the_pull_functions_role(any_run: ProgramRun) -> None:
    prefix = f"ryuzen-{any_run.stack}"
    (statement,) = _trust(any_run, f"{prefix}-access-presign")
    pull_role = any_run.named(f"{prefix}-access-pull-role")
    assert statement["Principal"] == {"AWS": pull_role.outputs["arn"]}
    pull = any_run.named(f"{prefix}-bundle-pull-fn")
    assert pull.inputs["role"] == pull_role.outputs["arn"]
    presign_arn = any_run.named(f"{prefix}-access-presign").outputs["arn"]
    assert pull.inputs["environment"]["variables"]["PRESIGN_ROLE_ARN"] == presign_arn


def test_the_presign_role_may_only_read_bundle_archives(any_run: ProgramRun) -> None:
    prefix = f"ryuzen-{any_run.stack}"
    policy = json.loads(any_run.named(f"{prefix}-access-presign-policy").inputs["policy"])
    bundles = any_run.outputs["buckets"]["bundles"]
    s3, kms = policy["Statement"]
    assert s3["Action"] == ["s3:GetObject"]
    assert s3["Resource"], "no resource"
    for resource in s3["Resource"]:
        assert resource.startswith(f"arn:aws:s3:::{bundles}/") and resource.endswith(".zip")
    # SSE-KMS objects: reading one takes Decrypt, through S3 and for this bucket only.
    assert kms["Action"] == ["kms:Decrypt"]
    assert kms["Condition"]["StringLike"]["kms:EncryptionContext:aws:s3:arn"] == [
        f"arn:aws:s3:::{bundles}",
        f"arn:aws:s3:::{bundles}/*",
    ]


def _roles_with_action(run: ProgramRun, action: str) -> set[str]:
    roles = set()
    for policy, document in run.policies():
        if any(action in _as_list(s["Action"]) for s in document["Statement"]):
            roles.add(policy.inputs["role"])
    return roles


def test_only_the_signing_stages_may_sign(any_run: ProgramRun) -> None:
    prefix = f"ryuzen-{any_run.stack}"
    signers = {
        any_run.named(name).outputs["name"]
        for name in (
            f"{prefix}-sanitize-role",
            f"{prefix}-bundle-task-role",
            f"{prefix}-cleanup-delivered-role",
        )
    }
    assert _roles_with_action(any_run, "kms:Sign") == signers
    # ... and exactly those roles carry the tag the key policy demands.
    tagged = {
        role.outputs["name"]
        for role in any_run.of_type("aws:iam/role:Role")
        if (role.inputs.get("tags") or {}).get(SIGNER_TAG) == prefix
    }
    assert tagged == signers
    signing_key = any_run.named(f"{prefix}-signing-key")
    for _, document in any_run.policies():
        for statement in document["Statement"]:
            if "kms:Sign" in statement["Action"]:
                assert statement["Resource"] == [signing_key.outputs["arn"]]


def test_the_signing_key_policy_denies_untagged_signers(any_run: ProgramRun) -> None:
    prefix = f"ryuzen-{any_run.stack}"
    key = any_run.named(f"{prefix}-signing-key").inputs
    assert key["customerMasterKeySpec"] == "ECC_NIST_P256"
    assert key["keyUsage"] == "SIGN_VERIFY"
    administer, deny = json.loads(key["policy"])["Statement"]
    # In a key policy "*" is the key itself; the account root keeps IAM in charge.
    assert administer["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    assert deny == {
        "Sid": "OnlyTaggedSignersSign",
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": "kms:Sign",
        "Resource": "*",
        "Condition": {"StringNotEquals": {f"aws:PrincipalTag/{SIGNER_TAG}": prefix}},
    }


def test_the_public_key_is_a_stack_output(any_run: ProgramRun) -> None:
    assert any_run.outputs["signingPublicKeyPem"].startswith("-----BEGIN PUBLIC KEY-----")
    assert "aws:kms/getPublicKey:getPublicKey" in any_run.calls


def test_no_aws_managed_policy_is_attached(any_run: ProgramRun) -> None:
    # Managed policies (AWSLambdaBasicExecutionRole...) grant on "*"; every grant is inline.
    assert not any_run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    for role in any_run.of_type("aws:iam/role:Role"):
        assert not role.inputs.get("managedPolicyArns"), role.name
