"""Who is sending, and for which partner: API key → ingest client, ``model.id`` → partner.

API Gateway has already checked the key itself; what reaches the Lambda is the key's id
(``requestContext.identity.apiKeyId``). The stack maps that id to an ingest client, and
the client's ``allowedPartners`` bound whose telemetry it may send. A single event it may
not send rejects the whole request, so nothing from a misrouted batch is ever written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from ryuzen_contracts.api_keys import identity_of

from ryuzen_ingest.responses import ErrorCode, IngestError

if TYPE_CHECKING:
    from ryuzen_contracts.stack_config import StackConfig

# Model ids come from clients, so the memo of resolved ids is bounded: a client sending
# endless distinct ids costs lookups, never unbounded memory.
_MODEL_MEMO_LIMIT = 4096
_MISSING = object()


class PartnerRouter:
    """Resolves clients and partners from one stack configuration."""

    def __init__(self, config: StackConfig, api_key_clients: Mapping[str, str]) -> None:
        self._config = config
        self._api_key_clients = dict(api_key_clients)
        self._allowed = {
            client.id: frozenset(client.allowed_partners) for client in config.ingest_clients
        }
        self._memo: dict[str, str | None] = {}

    def client_for_api_key(self, api_key_id: str | None) -> str:
        """The ingest client id of an API key id; 403 ``unknown_client`` when there is none."""
        client_id = identity_of(self._api_key_clients, api_key_id)
        if client_id is None or client_id not in self._allowed:
            raise IngestError(
                403, ErrorCode.UNKNOWN_CLIENT, "the API key is not mapped to an ingest client"
            )
        return client_id

    def partner_for_model(self, model_id: str) -> str | None:
        """The id of the partner owning ``model_id``, or None (memoised)."""
        partner = self._memo.get(model_id, _MISSING)
        if partner is _MISSING:
            owner = self._config.partner_for_model(model_id)
            partner = owner.id if owner is not None else None
            if len(self._memo) >= _MODEL_MEMO_LIMIT:
                self._memo.clear()
            self._memo[model_id] = partner
        return partner  # type: ignore[return-value]

    def partners_for(self, client_id: str, model_ids: Iterable[str]) -> list[str]:
        """The partner of each event, in order.

        400 ``unknown_model`` when no partner owns a model id; 403 ``forbidden_partner`` when
        the client may not send for the owner. The first offending event decides.
        """
        allowed = self._allowed[client_id]
        memo = self._memo
        partners: list[str] = []
        for position, model_id in enumerate(model_ids):
            partner = memo.get(model_id) or self.partner_for_model(model_id)
            if partner is None:
                raise IngestError(
                    400,
                    ErrorCode.UNKNOWN_MODEL,
                    f"event {position}: model.id belongs to no partner",
                )
            if partner not in allowed:
                raise IngestError(
                    403,
                    ErrorCode.FORBIDDEN_PARTNER,
                    f"event {position}: this client may not send for that model's partner",
                )
            partners.append(partner)
        return partners
