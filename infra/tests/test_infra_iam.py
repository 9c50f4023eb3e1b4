"""IAM across the stack: every policy document the program declares — inline role
policies, KMS key policies (AWS's default one where the program gives none), bucket, SQS
queue and SNS topic policies — has no wildcard action, no "*" resource, no "*"
principal, no whole-bucket object grant, no log-group pattern and no unconditioned
ListBucket, except the statements listed in ``EXCEPTIONS`` with the reason for each.
Also: every resource is this account's and region's, trust policies name exactly who may
assume each role, and signing is kept to the signers."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from infra.signing import SIGNER_TAG
from infra.storage import BUCKET_KEYS
from infra.tests.pulumi_harness import ACCOUNT, REGION, ProgramRun

# What a statement may do only with an entry in EXCEPTIONS.
WILDCARD_ACTION = "wildcard action"
STAR_RESOURCE = '"*" resource'
ANY_PRINCIPAL = '"*" principal'
WHOLE_BUCKET = "every object of a bucket"
LOG_GROUP_PATTERN = "log groups by pattern"
LIST_EVERYTHING = "unconditioned ListBucket"
# No exception may ever name this one: a wildcard that is not a key prefix, the log
# streams of one named group or the revisions of one task definition.
OTHER_WILDCARD = "other wildcard"

# (document, Sid) -> (what it does that needs an exception, why there is no narrower way).
# Documents are named by logical name without the stack prefix; <bucket> and <purpose>
# stand for every bucket and every storage key. The table is exact: a statement not in it
# may use none of the above, and an entry nothing uses any more fails the test.
EXCEPTIONS: dict[tuple[str, str], tuple[frozenset[str], str]] = {
    ("signing-key", "AccountAdministersTheKey"): (
        frozenset({WILDCARD_ACTION, STAR_RESOURCE}),
        'key policy: "*" is this key; without the account root, IAM could grant nothing on '
        "the key and nobody could administer it again (signing stays denied to untagged roles)",
    ),
    ("signing-key", "OnlyTaggedSignersSign"): (
        frozenset({ANY_PRINCIPAL, STAR_RESOURCE}),
        "a Deny: kms:Sign on this key to every principal not tagged as this stack's signer",
    ),
    ("storage-<purpose>-key", "Enable IAM User Permissions"): (
        frozenset({WILDCARD_ACTION, STAR_RESOURCE}),
        "AWS's default key policy (the program sets none): the account root on this key, so "
        "IAM decides; roles use the keys only via S3 for named buckets (kms_through_s3)",
    ),
    ("quarantine-hash-key", "Enable IAM User Permissions"): (
        frozenset({WILDCARD_ACTION, STAR_RESOURCE}),
        "AWS's default key policy (the program sets none): IAM decides, and only sanitize's "
        "role holds kms:GenerateMac on this key",
    ),
    ("storage-<bucket>-tls-only", "DenyInsecureTransport"): (
        frozenset({WILDCARD_ACTION, ANY_PRINCIPAL, WHOLE_BUCKET}),
        "a Deny: no S3 action by anyone on the bucket or any object without TLS",
    ),
    ("storage-<bucket>-tls-only", "DenyOutdatedTls"): (
        frozenset({WILDCARD_ACTION, ANY_PRINCIPAL, WHOLE_BUCKET}),
        "a Deny: no S3 action by anyone on the bucket or any object over TLS < 1.2",
    ),
    ("bundle-execution-policy", "RegistryLogin"): (
        frozenset({STAR_RESOURCE}),
        'ecr:GetAuthorizationToken has no resource type, AWS requires "*"; the token reads '
        "nothing, PullOwnImage on the one repository decides which images",
    ),
    ("api-logging-policy", "FindLogGroup"): (
        frozenset({LOG_GROUP_PATTERN}),
        "logs:DescribeLogGroups lists names account-wide (no per-group resource); API "
        "Gateway checks the destination group with it",
    ),
    ("api-logging-policy", "WriteEveryStacksAccessLogs"): (
        frozenset({LOG_GROUP_PATTERN}),
        "API Gateway's CloudWatch role is one per account and region, shared by every "
        "stack's API: it writes /ryuzen/api-access/* (every stack's access logs), no other",
    ),
    ("cleanup-sweep-policy", "DeleteExpiredRaw"): (
        frozenset({WHOLE_BUCKET}),
        "the sweep deletes any RAW object past retention, whatever its key (strays included)",
    ),
    ("cleanup-sweep-policy", "DeleteExpiredQuarantine"): (
        frozenset({WHOLE_BUCKET}),
        "the sweep deletes any quarantine object past retention, whatever its key",
    ),
    ("cleanup-sweep-policy", "ListRaw"): (
        frozenset({LIST_EVERYTHING}),
        "the sweep lists the whole RAW bucket to find what is past retention",
    ),
    ("cleanup-sweep-policy", "ListQuarantine"): (
        frozenset({LIST_EVERYTHING}),
        "the sweep lists the whole quarantine bucket to find what is past retention",
    ),
    ("sanitize-policy", "TellMissingRaw"): (
        frozenset({LIST_EVERYTHING}),
        "S3 answers a GET of a missing key 404 (a finished redelivery) only to a caller that "
        "may list the bucket, otherwise 403",
    ),
    ("bundle-pull-policy", "ListBundles"): (
        frozenset({LIST_EVERYTHING}),
        "an expired month must read as 404, not 403 (S3 says 404 only to a lister)",
    ),
    ("cleanup-delivered-policy", "TellMissingReceipt"): (
        frozenset({LIST_EVERYTHING}),
        "a month without a deletion receipt yet must read as NoSuchKey, not AccessDenied",
    ),
}
# AWS's key policy for a key created without one.
AWS_DEFAULT_KEY_POLICY: dict[str, Any] = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "Enable IAM User Permissions",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
    ],
}
# resource type token -> what the program's documents of that kind are called here
DOCUMENT_TYPES = {
    "aws:iam/rolePolicy:RolePolicy": "role policy",
    "aws:kms/key:Key": "key policy",
    "aws:s3/bucketPolicy:BucketPolicy": "bucket policy",
    "aws:sqs/queuePolicy:QueuePolicy": "queue policy",
    "aws:sns/topicPolicy:TopicPolicy": "topic policy",
}
_BUCKET_ROLES = "|".join(BUCKET_KEYS)
_KEY_PURPOSES = "|".join(sorted(set(BUCKET_KEYS.values())))


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


@dataclass(frozen=True)
class Document:
    """One policy document: its kind, its owner (as named in EXCEPTIONS) and statements."""

    kind: str
    owner: str
    statements: list[dict[str, Any]]


def _owner(run: ProgramRun, name: str) -> str:
    owner = name.removeprefix(f"ryuzen-{run.stack}-")
    owner = re.sub(rf"^storage-({_BUCKET_ROLES})-tls-only$", "storage-<bucket>-tls-only", owner)
    return re.sub(rf"^storage-({_KEY_PURPOSES})-key$", "storage-<purpose>-key", owner)


def documents(run: ProgramRun) -> Iterator[Document]:
    """Every policy document the program declares (and the default of a key without one)."""
    for typ, kind in DOCUMENT_TYPES.items():
        for resource in run.of_type(typ):
            policy = resource.inputs.get("policy")
            document = json.loads(policy) if policy else AWS_DEFAULT_KEY_POLICY
            assert policy or typ == "aws:kms/key:Key", resource.name
            yield Document(kind, _owner(run, resource.name), document["Statement"])


def _statements(run: ProgramRun) -> Iterator[tuple[Document, dict[str, Any]]]:
    for document in documents(run):
        for statement in document.statements:
            yield document, statement


def _principals(statement: dict[str, Any]) -> list[str]:
    principal = statement.get("Principal")
    if principal is None:
        return []
    if isinstance(principal, str):
        return [principal]
    return [p for values in principal.values() for p in _as_list(values)]


def _resource_findings(resource: str) -> set[str]:
    if resource == "*":
        return {STAR_RESOURCE}
    if "*" not in resource and "?" not in resource:
        return set()
    if resource.startswith("arn:aws:s3:::"):
        _, _, key = resource.removeprefix("arn:aws:s3:::").partition("/")
        if key == "*":
            return {WHOLE_BUCKET}
        # A key pattern under a named first segment: raw/*, acme/*/x.zip.
        first = key.split("/", 1)[0]
        return set() if first and "*" not in first and "?" not in first else {OTHER_WILDCARD}
    if resource.startswith("arn:aws:logs:"):
        group = resource.split(":log-group:", 1)[1]
        if re.fullmatch(r"[^*?:]+:\*", group):
            return set()  # the log streams of one named group
        return {LOG_GROUP_PATTERN}
    if re.fullmatch(r"arn:aws:ecs:[^*]+:task-definition/[^*:]+:\*", resource):
        return set()  # every revision of one task definition
    return {OTHER_WILDCARD}


def findings(statement: dict[str, Any]) -> frozenset[str]:
    """What a statement does that only an entry in EXCEPTIONS allows."""
    assert not {"NotAction", "NotResource", "NotPrincipal"} & set(statement), statement
    found: set[str] = set()
    actions = _as_list(statement["Action"])
    if any("*" in action or "?" in action for action in actions):
        found.add(WILDCARD_ACTION)
    if any("*" in principal for principal in _principals(statement)):
        found.add(ANY_PRINCIPAL)
    for resource in _as_list(statement["Resource"]):
        found |= _resource_findings(resource)
    if "s3:ListBucket" in actions and "Condition" not in statement:
        found.add(LIST_EVERYTHING)
    return frozenset(found)


def test_every_kind_of_policy_document_is_examined(any_run: ProgramRun) -> None:
    counts: dict[str, int] = {}
    for document in documents(any_run):
        counts[document.kind] = counts.get(document.kind, 0) + 1
        for statement in document.statements:
            assert statement.get("Sid"), (document.owner, statement)  # EXCEPTIONS names Sids
    assert counts["bucket policy"] == len(BUCKET_KEYS)
    # + the signing key and the quarantined-value hash key
    assert counts["key policy"] == len(set(BUCKET_KEYS.values())) + 2
    assert counts["queue policy"] == 3 and counts["topic policy"] == 1
    assert counts["role policy"] >= 10


def test_wildcards_only_in_the_listed_exceptions(any_run: ProgramRun) -> None:
    used = set()
    for document, statement in _statements(any_run):
        found = findings(statement)
        if not found:
            continue
        key = (document.owner, statement["Sid"])
        assert key in EXCEPTIONS, (document.kind, key, sorted(found))
        assert found == EXCEPTIONS[key][0], (key, sorted(found))
        used.add(key)
    # The list is exact: an exception nobody needs any more is removed from it.
    assert used == set(EXCEPTIONS)


def test_inline_role_policies_only_allow(any_run: ProgramRun) -> None:
    # A Deny in an inline policy would be a guard nobody reviews; the guards are the key
    # and bucket policies above.
    for policy, document in any_run.policies():
        assert {s["Effect"] for s in document["Statement"]} == {"Allow"}, policy.name


def test_any_principal_only_in_a_deny(any_run: ProgramRun) -> None:
    for document, statement in _statements(any_run):
        if ANY_PRINCIPAL in findings(statement):
            assert statement["Effect"] == "Deny", (document.owner, statement["Sid"])
            assert statement.get("Condition"), (document.owner, statement["Sid"])


def test_services_reach_resource_policies_only_from_this_stack(any_run: ProgramRun) -> None:
    # The confused-deputy guard: a service may act on a queue or topic only for this
    # account's (or one named resource's) requests.
    for document, statement in _statements(any_run):
        principal = statement.get("Principal")
        if not (isinstance(principal, dict) and "Service" in principal):
            continue
        conditions = {key for test in statement.get("Condition", {}).values() for key in test}
        assert conditions & {"aws:SourceArn", "aws:SourceAccount"}, (
            document.owner,
            statement["Sid"],
        )


def test_resources_are_this_accounts_and_regions(any_run: ProgramRun) -> None:
    # An ARN names this account and region (or none, for S3 and IAM), and never a
    # wildcard service; what its wildcards may stand for is findings()' business.
    for document, statement in _statements(any_run):
        for resource in _as_list(statement["Resource"]):
            if resource == "*":
                continue
            parts = resource.split(":")
            where = (document.owner, statement["Sid"], resource)
            assert parts[0] == "arn" and parts[1] == "aws", where
            assert "*" not in parts[2], where  # the service
            assert parts[3] in ("", REGION), where
            assert parts[4] in ("", ACCOUNT), where


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        pytest.param(
            {"Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::b/raw/*"]}, set(), id="prefix"
        ),
        pytest.param(
            {"Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::b/*"]},
            {WHOLE_BUCKET},
            id="whole-bucket",
        ),
        pytest.param(
            {"Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::b/*/x"]},
            {OTHER_WILDCARD},
            id="any-first-segment",
        ),
        pytest.param(
            {"Action": ["s3:ListBucket"], "Resource": ["arn:aws:s3:::b"]},
            {LIST_EVERYTHING},
            id="list-everything",
        ),
        pytest.param(
            {"Action": ["logs:PutLogEvents"], "Resource": ["arn:aws:logs:r:a:log-group:g:*"]},
            set(),
            id="own-log-streams",
        ),
        pytest.param(
            {"Action": ["logs:PutLogEvents"], "Resource": ["arn:aws:logs:r:a:log-group:/x/*"]},
            {LOG_GROUP_PATTERN},
            id="log-group-prefix",
        ),
        pytest.param(
            {"Action": ["dynamodb:GetItem"], "Resource": ["arn:aws:dynamodb:r:a:table/*"]},
            {OTHER_WILDCARD},
            id="any-table",
        ),
        pytest.param(
            {"Action": ["s3:Get*"], "Resource": ["*"]},
            {WILDCARD_ACTION, STAR_RESOURCE},
            id="wildcards",
        ),
        pytest.param(
            {"Principal": {"AWS": "*"}, "Action": "kms:Sign", "Resource": "*"},
            {ANY_PRINCIPAL, STAR_RESOURCE},
            id="any-principal",
        ),
    ],
)
def test_findings_recognise_each_kind_of_breadth(
    statement: dict[str, Any], expected: set[str]
) -> None:
    assert findings(statement) == expected


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


def test_the_presign_role_may_only_read_bundle_archives_and_receipts(any_run: ProgramRun) -> None:
    prefix = f"ryuzen-{any_run.stack}"
    policy = json.loads(any_run.named(f"{prefix}-access-presign-policy").inputs["policy"])
    bundles = any_run.outputs["buckets"]["bundles"]
    archives, receipts, kms = policy["Statement"]
    for statement, ending in ((archives, ".zip"), (receipts, "/deletion-receipt.dsse.json")):
        assert statement["Action"] == ["s3:GetObject"]
        assert statement["Resource"], "no resource"
        for resource in statement["Resource"]:
            assert resource.startswith(f"arn:aws:s3:::{bundles}/") and resource.endswith(ending)
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


def test_only_sanitize_may_derive_the_quarantined_value_hash(any_run: ProgramRun) -> None:
    prefix = f"ryuzen-{any_run.stack}"
    key = any_run.named(f"{prefix}-quarantine-hash-key")
    assert (key.inputs["customerMasterKeySpec"], key.inputs["keyUsage"]) == (
        "HMAC_256",
        "GENERATE_VERIFY_MAC",
    )
    sanitize_role = any_run.named(f"{prefix}-sanitize-role").outputs["name"]
    assert _roles_with_action(any_run, "kms:GenerateMac") == {sanitize_role}
    for _, document in any_run.policies():
        for statement in document["Statement"]:
            if "kms:GenerateMac" in statement["Action"]:
                assert statement["Resource"] == [key.outputs["arn"]]
    sanitize = any_run.named(f"{prefix}-sanitize-fn").inputs["environment"]["variables"]
    assert sanitize["QUARANTINE_HASH_KMS_KEY_ID"] == key.outputs["arn"]


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
