"""Signing: the asymmetric KMS key behind every certificate, manifest and deletion receipt.

``ECC_NIST_P256`` / ``SIGN_VERIFY`` (DESIGN §3: ECDSA P-256 / SHA-256 in a DSSE envelope).
The private half never leaves KMS; the public half is a stack output, the PEM partners
verify bundles with (also served at ``GET /v1/keys/signing``).

Who may sign is decided twice. Each signing stage's role (sanitize, the bundle task,
cleanup) holds ``kms:Sign`` on this key alone, and nothing else does. And the key policy
itself refuses ``kms:Sign`` to every principal not tagged ``ryuzen-signer=<stack>``, so an
administrator whose IAM policy says ``kms:*`` still cannot forge an attestation, and
another stack's signer cannot use this stack's key.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

SIGNER_TAG = "ryuzen-signer"


@dataclass
class SigningArgs:
    """The account the key lives in and the tag value that marks this stack's signers."""

    account_id: str
    partition: str
    signer_tag_value: str
    protect: bool


class Signing(pulumi.ComponentResource):
    """The signing key, its alias and its public key."""

    key: aws.kms.Key
    public_key_pem: pulumi.Output[str]

    def __init__(
        self, name: str, args: SigningArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ryuzen:index:Signing", name, None, opts)
        self.key = aws.kms.Key(
            f"{name}-key",
            description=f"Ryuzen Telemetry {name}: signs certificates, manifests and receipts",
            customer_master_key_spec="ECC_NIST_P256",
            key_usage="SIGN_VERIFY",
            deletion_window_in_days=30 if args.protect else 7,
            policy=signing_key_policy(args),
            # Rotation is not offered for asymmetric keys: a new key is a new public key,
            # which partners must be told about, so it is a deliberate replacement.
            opts=pulumi.ResourceOptions(parent=self, protect=args.protect),
        )
        aws.kms.Alias(
            f"{name}-alias",
            name=f"alias/{name}",
            target_key_id=self.key.key_id,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.public_key_pem = aws.kms.get_public_key_output(
            key_id=self.key.arn, opts=pulumi.InvokeOutputOptions(parent=self)
        ).public_key_pem
        self.register_outputs({"key_arn": self.key.arn, "public_key_pem": self.public_key_pem})


def signing_key_policy(args: SigningArgs) -> str:
    """The key policy: the account administers the key; only tagged signers may sign."""
    root = f"arn:{args.partition}:iam::{args.account_id}:root"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    # Without the account root, IAM policies could not grant anything on
                    # the key and nobody could ever administer it again. In a key policy
                    # "Resource": "*" means this key.
                    "Sid": "AccountAdministersTheKey",
                    "Effect": "Allow",
                    "Principal": {"AWS": root},
                    "Action": "kms:*",
                    "Resource": "*",
                },
                {
                    "Sid": "OnlyTaggedSignersSign",
                    "Effect": "Deny",
                    "Principal": {"AWS": "*"},
                    "Action": "kms:Sign",
                    "Resource": "*",
                    "Condition": {
                        "StringNotEquals": {f"aws:PrincipalTag/{SIGNER_TAG}": args.signer_tag_value}
                    },
                },
            ],
        }
    )
