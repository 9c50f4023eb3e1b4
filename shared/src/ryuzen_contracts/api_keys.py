"""API key ids → who is calling: the mapping each API stage reads from its settings.

API Gateway checks the API key itself and hands the Lambda only the key's *id*
(``requestContext.identity.apiKeyId`` of a REST proxy event). Each API stage maps that id
to an identity of the stack: ingest to an ingest client (``API_KEY_CLIENTS``), the
partner pull API to a partner (``API_KEY_PARTNERS``). The mapping is a JSON object in the
environment, checked against the stack configuration when the settings are read, so a
mapping that names an identity the stack does not have fails there, naming the variable,
instead of refusing callers one by one later.

Plain Python (no pydantic, no boto3): the handlers import it at cold start.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import Any


def parse_api_key_map(
    value: object, *, identity: str, known: Collection[str] | None
) -> dict[str, str]:
    """The ``{apiKeyId: identity id}`` mapping, from its JSON text or an already parsed mapping.

    ``identity`` names what the values are in messages (``"partner"``, ``"ingest client"``).
    ``known`` holds the identity ids the stack has; None skips that check (for when the
    stack configuration is itself invalid and reported on its own). Raises ValueError
    whose message names identity ids at most, never an API key id.
    """
    shape = f"must be a JSON object of apiKeyId to {identity} id"
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValueError(shape) from None
    if not isinstance(value, Mapping) or not all(
        isinstance(key, str) and key and isinstance(name, str) and name
        for key, name in value.items()
    ):
        raise ValueError(shape)
    mapping: dict[str, str] = dict(value)
    if known is not None:
        unknown = sorted(set(mapping.values()) - set(known))
        if unknown:
            raise ValueError(f"names {identity}s the stack does not have: {', '.join(unknown)}")
    return mapping


def api_key_id(event: Mapping[str, Any]) -> str | None:
    """The API key id of a REST proxy event, or None when there is none (or it is not text).

    API Gateway sets it only for methods that require a key; an event from anywhere else
    (a local caller, a test) may lack the identity block or carry anything in it.
    """
    context = event.get("requestContext")
    identity = context.get("identity") if isinstance(context, Mapping) else None
    key_id = identity.get("apiKeyId") if isinstance(identity, Mapping) else None
    return key_id if isinstance(key_id, str) and key_id else None


def identity_of(api_key_ids: Mapping[str, str], key_id: str | None) -> str | None:
    """The identity ``key_id`` maps to, or None for no key or an unmapped one."""
    return api_key_ids.get(key_id) if key_id is not None else None
