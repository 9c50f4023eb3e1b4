"""PartnerAccess: every role through which a partner's bundle leaves the bundle bucket.

* The **pull function's role** (made here, without its policy, which ``StageFunction``
  attaches): the presign role must name it before the function exists.
* The **presign role**. The pull API signs its URLs with credentials of this role instead
  of its own: Lambda hands a function credentials without an expiry, so a URL's lifetime
  could not be clamped to them (``ryuzen_bundle.signing_role``). Only the pull function's
  role may assume it, and it may only read bundle archives — whoever holds a URL holds
  exactly that.
* One **cross-account role per partner with an AWS account id**: that account may assume
  it and read (list and get) its own prefix ``{partner}/`` of the bundle bucket, nothing
  else. A partner without an account id gets none; removing the id (or the partner)
  removes the role.

Bundles are SSE-KMS under the bundles key, so reading one also takes ``kms:Decrypt`` on
that key — granted through S3 only, and only for the bundle bucket.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
from ryuzen_contracts.stack_config import Partner

from infra.iam_statements import S3_READ, kms_through_s3, policy_document, s3_list, s3_objects
from infra.stage_function import lambda_role
from infra.stage_permissions import RECEIPT_NAME

# STS refuses a chained session longer than one hour, and the pull API chains.
SESSION_SECONDS = 3600


@dataclass
class PartnerAccessArgs:
    """The bucket and key behind the roles, and who is trusted."""

    partners: Sequence[Partner]
    bundles: aws.s3.Bucket
    bundles_key: aws.kms.Key
    region: str
    partition: str


class PartnerAccess(pulumi.ComponentResource):
    """The pull function's role, the presign role and the partners' cross-account roles."""

    pull_role: aws.iam.Role
    presign_role: aws.iam.Role
    partner_roles: dict[str, aws.iam.Role]

    def __init__(
        self, name: str, args: PartnerAccessArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ryuzen:index:PartnerAccess", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        decrypt = kms_through_s3(
            args.bundles_key, [args.bundles], args.region, write=False, sid="DecryptBundles"
        )
        self.pull_role = lambda_role(f"{name}-pull-role", self)
        self.presign_role = aws.iam.Role(
            f"{name}-presign",
            description="Signs the partner pull API's presigned bundle URLs",
            assume_role_policy=_trust(self.pull_role.arn),
            max_session_duration=SESSION_SECONDS,
            opts=child,
        )
        # What the pull API hands out: each partner's bundle archives and, once a month is
        # cleaned, the deletion receipt beside its archive.
        archives = [f"{p.id}/*/ryuzen-telemetry-{p.id}-*.zip" for p in args.partners]
        receipts = [f"{p.id}/*/{RECEIPT_NAME}" for p in args.partners]
        aws.iam.RolePolicy(
            f"{name}-presign-policy",
            role=self.presign_role.id,
            policy=policy_document(
                [
                    s3_objects(args.bundles, S3_READ, archives, sid="ReadBundleArchives"),
                    s3_objects(args.bundles, S3_READ, receipts, sid="ReadDeletionReceipts"),
                    decrypt,
                ]
            ),
            opts=child,
        )
        self.partner_roles = {}
        for partner in args.partners:
            if partner.aws_account_id is None:
                continue
            role = aws.iam.Role(
                f"{name}-{partner.id}",
                description=f"Partner {partner.id}: read its own Ryuzen Telemetry bundles",
                assume_role_policy=_trust(
                    f"arn:{args.partition}:iam::{partner.aws_account_id}:root"
                ),
                max_session_duration=SESSION_SECONDS,
                opts=child,
            )
            prefix = f"{partner.id}/"
            aws.iam.RolePolicy(
                f"{name}-{partner.id}-policy",
                role=role.id,
                policy=policy_document(
                    [
                        s3_list(args.bundles, [prefix, f"{prefix}*"], sid="ListOwnPrefix"),
                        s3_objects(args.bundles, S3_READ, [f"{prefix}*"], sid="ReadOwnPrefix"),
                        decrypt,
                    ]
                ),
                opts=child,
            )
            self.partner_roles[partner.id] = role
        self.register_outputs(
            {
                "pull_role_arn": self.pull_role.arn,
                "presign_role_arn": self.presign_role.arn,
                "partner_role_arns": {p: r.arn for p, r in self.partner_roles.items()},
            }
        )


def _trust(principal: pulumi.Input[str]) -> pulumi.Output[str]:
    return pulumi.Output.json_dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}
            ],
        }
    )
