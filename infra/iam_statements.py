"""IAM statements for least privilege, built one way everywhere.

Every role of the program gets its statements from here, so the shapes least privilege
depends on live in one place:

* object actions name ``bucket/<key pattern>`` resources for the keys a role uses, never
  the whole bucket unless the bucket as a whole is the role's job (the retention sweep);
* ``s3:ListBucket`` is conditioned on ``s3:prefix`` — except where a role must tell a
  missing key from a forbidden one: without an unconditioned ListBucket, S3 answers a
  GET of a missing key with 403 instead of 404 (sanitize, the pull API and cleanup treat
  404 as "nothing to do");
* KMS is usable only through S3 (``kms:ViaService``) and only for the buckets named
  (``kms:EncryptionContext:aws:s3:arn``; every bucket has S3 Bucket Keys on, so the
  context is the bucket's ARN).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

Statement = dict[str, Any]

S3_READ = ["s3:GetObject"]
S3_WRITE = ["s3:PutObject"]
S3_DELETE = ["s3:DeleteObject"]
KMS_READ = ["kms:Decrypt"]
# Writing an SSE-KMS object takes a data key; multipart uploads and S3 Bucket Keys also
# decrypt it again, so every writer gets both.
KMS_WRITE = ["kms:GenerateDataKey", "kms:Decrypt"]


def allow(
    actions: Sequence[str],
    resources: pulumi.Input[str] | Sequence[pulumi.Input[str]],
    condition: dict[str, Any] | None = None,
    *,
    sid: str | None = None,
) -> Statement:
    """One Allow statement."""
    statement: Statement = {
        "Effect": "Allow",
        "Action": sorted(set(actions)),
        "Resource": resources if isinstance(resources, list | tuple) else [resources],
    }
    if condition:
        statement["Condition"] = condition
    if sid:
        statement["Sid"] = sid
    return statement


def object_arns(bucket: aws.s3.Bucket, patterns: Sequence[str]) -> list[pulumi.Output[str]]:
    """``arn:aws:s3:::bucket/<pattern>`` for each key pattern (``raw/*``, ``acme/*/x.json``)."""
    return [pulumi.Output.concat(bucket.arn, "/", key) for key in patterns]


def s3_objects(
    bucket: aws.s3.Bucket, actions: Sequence[str], patterns: Sequence[str], *, sid: str
) -> Statement:
    """Object actions on the keys matching ``patterns`` in ``bucket``."""
    if not patterns:
        raise ValueError(f'{sid}: name the key patterns ("*" for the whole bucket)')
    return allow(actions, object_arns(bucket, patterns), sid=sid)


def s3_list(bucket: aws.s3.Bucket, patterns: Sequence[str] | None, *, sid: str) -> Statement:
    """ListBucket for prefixes matching ``patterns``; None: unconditioned (see above for when)."""
    condition = None
    if patterns is not None:
        condition = {"StringLike": {"s3:prefix": list(patterns)}}
    return allow(["s3:ListBucket"], bucket.arn, condition, sid=sid)


def kms_through_s3(
    key: aws.kms.Key,
    buckets: Sequence[aws.s3.Bucket],
    region: str,
    *,
    write: bool,
    sid: str,
) -> Statement:
    """Use of ``key`` only by S3, on behalf of the role, for these buckets' objects."""
    contexts: list[pulumi.Input[str]] = []
    for bucket in buckets:
        contexts.append(bucket.arn)
        contexts.append(pulumi.Output.concat(bucket.arn, "/*"))
    return allow(
        KMS_WRITE if write else KMS_READ,
        key.arn,
        {
            "StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"},
            "StringLike": {"kms:EncryptionContext:aws:s3:arn": contexts},
        },
        sid=sid,
    )


def policy_document(statements: Sequence[Statement]) -> pulumi.Output[str]:
    """The JSON policy document of ``statements`` (outputs resolved)."""
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": list(statements)})


def service_trust_policy(service: str, source_account: str | None = None) -> str:
    """A trust policy letting the AWS ``service`` assume the role.

    With ``source_account`` (for services that state it when they assume a role, such as
    ECS tasks and EventBridge Scheduler), only on behalf of this account's resources: the
    confused-deputy guard.
    """
    statement: Statement = {
        "Effect": "Allow",
        "Principal": {"Service": service},
        "Action": "sts:AssumeRole",
    }
    if source_account is not None:
        statement["Condition"] = {"StringEquals": {"aws:SourceAccount": source_account}}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})
