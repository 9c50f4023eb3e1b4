"""Lambda's 4 KB environment limit, checked by the program rather than discovered by AWS.

The stages read the stack config from ``STACK_CONFIG`` (ingest, sanitize, the pull API,
the sweep and the bundle task; the ingest stage reads nothing else), and Lambda refuses a
function whose environment is over 4 KB in all. A long partner list hits that limit
first, and AWS would only say so half-way through ``pulumi up``, leaving a stack partly
updated. So the program checks twice:

* ``check_known_size`` — before any resource exists, with what is known from the stack
  config alone (``STACK_CONFIG`` and the API-key maps) plus a reserve for the bucket,
  table and key names still to be created; ``pulumi preview`` fails here too;
* ``checked_environment`` — the exact size, once every name is known, before the function
  is created or updated.

The JSON form is what is counted (it is longer than the bare keys and values), so a
passing check leaves a margin rather than relying on how AWS counts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import pulumi

LAMBDA_ENVIRONMENT_LIMIT = 4096
# What the largest environment (the pull API's) needs besides STACK_CONFIG and its API-key
# map: five names of buckets, tables, keys and roles (each well under 150 characters) and
# their variable names.
RESERVED_FOR_RESOURCE_NAMES = 900


class EnvironmentTooLargeError(ValueError):
    """A function's environment would exceed Lambda's 4 KB limit."""


def environment_size(variables: Mapping[str, str]) -> int:
    """Bytes of the environment as compact JSON."""
    return len(json.dumps(dict(variables), separators=(",", ":")).encode("utf-8"))


def _too_large(function: str, size: int, variables: Mapping[str, str]) -> EnvironmentTooLargeError:
    largest = sorted(variables, key=lambda name: -len(variables[name].encode("utf-8")))[:3]
    parts = ", ".join(f"{name} {len(variables[name].encode('utf-8'))} B" for name in largest)
    return EnvironmentTooLargeError(
        f"{function}: its Lambda environment would be {size} bytes, over Lambda's "
        f"{LAMBDA_ENVIRONMENT_LIMIT}-byte limit (largest: {parts}). The stages read the stack "
        "config from STACK_CONFIG, so shorten it: fewer or shorter modelPrefixes, fewer "
        "partners or ingest clients per stack."
    )


def check_known_size(function: str, known: Mapping[str, str]) -> None:
    """Fail early when the variables known now, plus the reserve, cannot fit."""
    size = environment_size(known) + RESERVED_FOR_RESOURCE_NAMES
    if size > LAMBDA_ENVIRONMENT_LIMIT:
        raise _too_large(function, size, known)


def checked_environment(
    function: str, variables: Mapping[str, pulumi.Input[str]]
) -> pulumi.Output[dict[str, str]]:
    """``variables`` resolved, raising EnvironmentTooLargeError when they exceed the limit."""

    def check(resolved: dict[str, str]) -> dict[str, str]:
        size = environment_size(resolved)
        if size > LAMBDA_ENVIRONMENT_LIMIT:
            raise _too_large(function, size, resolved)
        return resolved

    return pulumi.Output.all(**variables).apply(check)
