"""ApiKeys: one API Gateway key per ingest client and per partner, from the stack config.

The keys exist before the functions, because each API function maps the key *id* API
Gateway hands it to an identity (``API_KEY_CLIENTS``, ``API_KEY_PARTNERS``; see
``ryuzen_contracts.api_keys``). Their usage plans need the API's stage, so they are made
with the API (``ingest_api``). Names carry the client or partner id, so adding or removing
one in the stack config adds or removes exactly its key.

API Gateway generates each key's value; Pulumi keeps it as a secret in the stack's
state. Operators hand it over with ``aws apigateway get-api-key --api-key <id>
--include-value`` (the ids are stack outputs).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
from ryuzen_contracts.stack_config import IngestClient, Partner


@dataclass
class ApiKeysArgs:
    """Who gets a key."""

    clients: Sequence[IngestClient]
    partners: Sequence[Partner]


class ApiKeys(pulumi.ComponentResource):
    """The stack's API keys, by ingest client id and by partner id."""

    clients: dict[str, aws.apigateway.ApiKey]
    partners: dict[str, aws.apigateway.ApiKey]

    def __init__(
        self, name: str, args: ApiKeysArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ryuzen:index:ApiKeys", name, None, opts)
        self.clients = {
            client.id: self._key(f"{name}-client-{client.id}", f"ingest client {client.id}")
            for client in args.clients
        }
        self.partners = {
            partner.id: self._key(f"{name}-partner-{partner.id}", f"partner {partner.id}")
            for partner in args.partners
        }
        self.register_outputs(
            {
                "clients": {client: key.id for client, key in self.clients.items()},
                "partners": {partner: key.id for partner, key in self.partners.items()},
            }
        )

    def _key(self, name: str, who: str) -> aws.apigateway.ApiKey:
        return aws.apigateway.ApiKey(
            name,
            description=f"Ryuzen Telemetry: {who}",
            enabled=True,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def client_map(self) -> pulumi.Output[str]:
        """``API_KEY_CLIENTS``: JSON ``{apiKeyId: client id}``."""
        return _key_map(self.clients)

    def partner_map(self) -> pulumi.Output[str]:
        """``API_KEY_PARTNERS``: JSON ``{apiKeyId: partner id}``."""
        return _key_map(self.partners)


def _key_map(keys: dict[str, aws.apigateway.ApiKey]) -> pulumi.Output[str]:
    owners = sorted(keys)
    return pulumi.Output.all(*(keys[owner].id for owner in owners)).apply(
        lambda ids: json.dumps(
            dict(zip(ids, owners, strict=True)), sort_keys=True, separators=(",", ":")
        )
    )
