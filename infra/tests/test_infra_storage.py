"""Every bucket: SSE-KMS, public access blocked, ACLs off, TLS-only, lifecycle, unversioned."""

from __future__ import annotations

import json

import pytest

from infra.tests.pulumi_harness import ProgramRun

ROLES = ("raw", "sanitized", "analytics", "quarantine", "bundles", "artifacts", "athena")


def _by_bucket(run: ProgramRun, typ: str) -> dict[str, dict]:
    return {r.inputs["bucket"]: r.inputs for r in run.of_type(typ)}


def _bucket_names(run: ProgramRun) -> dict[str, str]:
    return dict(run.outputs["buckets"])


def test_the_stack_has_the_seven_buckets(any_run: ProgramRun) -> None:
    assert sorted(_bucket_names(any_run)) == sorted(ROLES)
    assert len(any_run.of_type("aws:s3/bucket:Bucket")) == len(ROLES)


def test_every_bucket_is_sse_kms_with_a_bucket_key(any_run: ProgramRun) -> None:
    encryption = _by_bucket(
        any_run,
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    )
    keys = {}
    for role, bucket in _bucket_names(any_run).items():
        (rule,) = encryption[bucket]["rules"]
        default = rule["applyServerSideEncryptionByDefault"]
        assert default["sseAlgorithm"] == "aws:kms", role
        assert default["kmsMasterKeyId"].startswith("arn:aws:kms:"), role
        assert rule["bucketKeyEnabled"] is True, role
        keys[role] = default["kmsMasterKeyId"]
    # Quarantine has its own key, and so do partner bundles; the rest share one.
    assert keys["quarantine"] not in {k for r, k in keys.items() if r != "quarantine"}
    assert keys["bundles"] not in {k for r, k in keys.items() if r != "bundles"}
    assert len({keys[r] for r in ("raw", "sanitized", "analytics", "artifacts", "athena")}) == 1


def test_every_bucket_blocks_public_access_and_acls(any_run: ProgramRun) -> None:
    blocks = _by_bucket(any_run, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    ownership = _by_bucket(any_run, "aws:s3/bucketOwnershipControls:BucketOwnershipControls")
    for role, bucket in _bucket_names(any_run).items():
        block = blocks[bucket]
        for flag in (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        ):
            assert block[flag] is True, (role, flag)
        assert ownership[bucket]["rule"]["objectOwnership"] == "BucketOwnerEnforced", role


def test_every_bucket_policy_refuses_plain_http_and_old_tls(any_run: ProgramRun) -> None:
    policies = _by_bucket(any_run, "aws:s3/bucketPolicy:BucketPolicy")
    for role, bucket in _bucket_names(any_run).items():
        statements = json.loads(policies[bucket]["policy"])["Statement"]
        # Deny-only: a bucket policy here never grants anything.
        assert {s["Effect"] for s in statements} == {"Deny"}, role
        conditions = [s["Condition"] for s in statements]
        assert {"Bool": {"aws:SecureTransport": "false"}} in conditions, role
        assert {"NumericLessThan": {"s3:TlsVersion": "1.2"}} in conditions, role
        for statement in statements:
            assert statement["Resource"] == [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]


def test_no_bucket_is_versioned(any_run: ProgramRun) -> None:
    # A delete must really delete; no BucketVersioning resource exists at all.
    assert not [r for r in any_run.resources if "Versioning" in r.typ]
    for bucket in any_run.of_type("aws:s3/bucket:Bucket"):
        assert "versioning" not in bucket.inputs


def _expirations(run: ProgramRun, role: str) -> dict[str, tuple[str, float]]:
    lifecycle = _by_bucket(run, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    rules = lifecycle[_bucket_names(run)[role]]["rules"]
    assert any("abortIncompleteMultipartUpload" in rule for rule in rules), role
    return {
        rule["id"]: (rule["filter"]["prefix"], rule["expiration"]["days"])
        for rule in rules
        if "expiration" in rule
    }


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        pytest.param("raw", {"raw-backstop": ("", 1)}, id="raw-one-day"),
        pytest.param("quarantine", {"quarantine-retention": ("", 14)}, id="quarantine-days"),
        pytest.param("sanitized", {"undelivered-backstop": ("", 100)}, id="sanitized-backstop"),
        pytest.param("analytics", {"undelivered-backstop": ("", 100)}, id="analytics-backstop"),
        pytest.param("athena", {"query-results": ("", 7)}, id="athena-week"),
        pytest.param("artifacts", {}, id="artifacts-kept"),
    ],
)
def test_lifecycle_backstops(dev_run: ProgramRun, role: str, expected: dict) -> None:
    assert _expirations(dev_run, role) == expected


def test_bundles_expire_per_partner_prefix_with_a_backstop(any_run: ProgramRun, request) -> None:
    values = request.getfixturevalue(f"{any_run.stack}_values")
    partners = values["ryuzen-telemetry:partners"]
    retention = {p["id"]: p.get("bundleRetentionDays", 90) for p in partners}
    assert _expirations(any_run, "bundles") == {
        **{f"bundle-retention-{p}": (f"{p}/", days) for p, days in retention.items()},
        # Bucket-wide, after the longest retention: a removed partner's prefix expires too.
        "bundle-backstop": ("", max(retention.values())),
    }


def test_only_the_bundle_bucket_and_keys_are_protected_in_prod(prod_run, dev_run) -> None:
    # force_destroy lets a dev stack be torn down; prod buckets refuse it.
    assert all(b.inputs["forceDestroy"] is True for b in dev_run.of_type("aws:s3/bucket:Bucket"))
    assert all(b.inputs["forceDestroy"] is False for b in prod_run.of_type("aws:s3/bucket:Bucket"))
    keys = prod_run.of_type("aws:kms/key:Key")
    assert {k.inputs["deletionWindowInDays"] for k in keys} == {30}
    assert {k.inputs["deletionWindowInDays"] for k in dev_run.of_type("aws:kms/key:Key")} == {7}
