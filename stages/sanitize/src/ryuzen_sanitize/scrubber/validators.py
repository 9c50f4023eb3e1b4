"""Validators: the checks a regular expression cannot make (checksums, ranges, context).

A rule's regex finds *candidates*; its validator decides whether a candidate is really
personal data and which characters to redact. Every validator takes the ``re.Match`` of
the rule's Python pattern over the candidate and returns the ``(start, end)`` span to
redact (offsets in ``match.string``), or ``None`` to keep the text.

Validators read only the match's own groups, never the text around it: the vectorized
engine calls them on an extracted candidate, the second scan on a match inside the full
text, and both must reach the same verdict.

Changing what a validator accepts changes the rule set, so bump ``RULESET_VERSION``.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from collections.abc import Callable

Span = tuple[int, int]
Validator = Callable[[re.Match[str]], Span | None]

_DIGITS = re.compile(r"[0-9]")
_DATE_PREFIX = re.compile(r"\+?[0-9]{4}[-/.][0-9]{2}[-/.][0-9]{2}")
_CAMEL_WORDS = re.compile(r"(?:[A-Z][a-z]+)+")
_VENDOR_PREFIX = re.compile(
    r"^(?:sk-(?:proj-|svcacct-|admin-|ant-(?:api03-|admin01-)?)?|gh[pousr]_|github_pat_"
    r"|xox[abposr]-|glpat-|AIza|[rsp]k_(?:live|test)_|hf_|npm_)"
)


def pii_span(match: re.Match[str]) -> Span:
    """The span a rule redacts: its ``pii`` group when it has one, else the whole match."""
    if "pii" in match.re.groupindex and match.group("pii") is not None:
        return match.span("pii")
    return match.span()


def _group(match: re.Match[str], name: str) -> str:
    """A named group's text, ``""`` when the group is absent or did not take part."""
    if name not in match.re.groupindex:
        return ""
    return match.group(name) or ""


# --- checksums ----------------------------------------------------------------------


def luhn_ok(digits: str) -> bool:
    """The Luhn (mod-10) check every payment card number carries."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


# ISO 13616 lengths per country: a wrong length alone rules a candidate out.
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
    "BH": 22, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24,
    "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31,
    "SE": 24, "SI": 19, "SK": 24, "SM": 27, "TN": 24, "TR": 26, "UA": 29, "VA": 22,
    "VG": 24, "XK": 20,
}  # fmt: skip


def iban_ok(compact: str) -> bool:
    """ISO 7064 mod-97-10 over an IBAN without spaces, with its country's length."""
    if IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(char, 36)) for char in rearranged)
    return int(number) % 97 == 1


# --- payment cards, SSN, IBAN -------------------------------------------------------

# Issuer prefixes (IIN ranges) and the lengths each network issues. Luhn alone passes
# one random digit string in ten; the prefix table keeps epoch milliseconds, order
# numbers and snowflake ids that happen to pass Luhn out.
_CARD_NETWORKS: tuple[tuple[tuple[int, int], int, frozenset[int]], ...] = (
    ((4, 4), 1, frozenset({13, 16, 19})),  # Visa
    ((51, 55), 2, frozenset({16})),  # Mastercard
    ((2221, 2720), 4, frozenset({16})),  # Mastercard 2-series
    ((34, 34), 2, frozenset({15})),  # Amex
    ((37, 37), 2, frozenset({15})),  # Amex
    ((6011, 6011), 4, frozenset(range(16, 20))),  # Discover
    ((644, 649), 3, frozenset(range(16, 20))),  # Discover
    ((65, 65), 2, frozenset(range(16, 20))),  # Discover
    ((3528, 3589), 4, frozenset(range(16, 20))),  # JCB
    ((300, 305), 3, frozenset(range(14, 20))),  # Diners Club
    ((36, 36), 2, frozenset(range(14, 20))),  # Diners Club
    ((38, 39), 2, frozenset(range(16, 20))),  # Diners Club
    ((62, 62), 2, frozenset(range(16, 20))),  # UnionPay
    ((50, 50), 2, frozenset(range(12, 20))),  # Maestro
    ((56, 58), 2, frozenset(range(12, 20))),  # Maestro
    ((67, 67), 2, frozenset(range(12, 20))),  # Maestro
)
# Printed groupings; a separated number grouped otherwise is a phone number or an id.
_CARD_GROUPINGS = frozenset(
    {(4, 4, 4, 4), (4, 4, 4, 4, 3), (4, 4, 4, 4, 2), (4, 4, 4, 1), (4, 4, 4, 3), (4, 4, 4, 2)}
    | {(4, 6, 5), (4, 6, 4)}
)


def payment_card(match: re.Match[str]) -> Span | None:
    """Luhn, issuer prefix and length, and a printed grouping when separated."""
    if _group(match, "lead"):  # "+4930..." is an E.164 phone number
        return None
    text = _group(match, "pii")
    digits = text.replace(" ", "").replace("-", "")
    if not 12 <= len(digits) <= 19 or not luhn_ok(digits):
        return None
    if digits != text:
        groups = tuple(len(part) for part in re.split(r"[ -]", text))
        if groups not in _CARD_GROUPINGS:
            return None
    for (low, high), width, lengths in _CARD_NETWORKS:
        if low <= int(digits[:width]) <= high and len(digits) in lengths:
            return pii_span(match)
    return None


def us_ssn(match: re.Match[str]) -> Span | None:
    """Area 001-899 except 666, group 01-99, serial 0001-9999 (SSA's issued ranges)."""
    if _group(match, "tail"):  # "123-45-6789-01" is a longer identifier
        return None
    digits = re.sub(r"[^0-9]", "", _group(match, "pii"))
    area, group, serial = int(digits[:3]), int(digits[3:5]), int(digits[5:])
    if area == 0 or area == 666 or area >= 900 or group == 0 or serial == 0:
        return None
    return pii_span(match)


def iban(match: re.Match[str]) -> Span | None:
    """mod-97 over the country's IBAN length; a trailing word the regex took is left out."""
    text = _group(match, "pii")
    start = match.start("pii")
    length = IBAN_LENGTHS.get(text[:2])
    if length is None:
        return None
    taken = 0
    for offset, char in enumerate(text):
        if char != " ":
            taken += 1
            if taken == length:
                compact = text[: offset + 1].replace(" ", "")
                return (start, start + offset + 1) if iban_ok(compact) else None
    return None


# --- network addresses --------------------------------------------------------------


def ipv4(match: re.Match[str]) -> Span | None:
    """Octets 0-255; not a version (after "v"/"build"/"Chrome/", or more dotted parts);
    not a reserved block.

    The rule's ``ctx`` group only ever holds a version word or a product token, so any
    context means "version". Loopback, "this network" (0/8), multicast and reserved
    (224/3, so also netmasks such as 255.255.255.0) identify nobody and stay.
    """
    if _group(match, "tail") or _group(match, "ctx"):
        return None
    address = _group(match, "pii").split(":", 1)[0]
    octets = [int(part) for part in address.split(".")]
    if any(octet > 255 for octet in octets):
        return None
    if octets[0] in (0, 127) or octets[0] >= 224:
        return None
    return pii_span(match)


def ipv6(match: re.Match[str]) -> Span | None:
    """A real IPv6 address (``ipaddress`` decides), not ``::``/``::1``, not a word pair.

    ``add::cafe`` parses as IPv6 but is a C++ or Rust path: an address is accepted only
    with three or more groups or a group that holds a digit.
    """
    text = _group(match, "pii")
    start, end = match.span("pii")
    if text.endswith(":") and not text.endswith("::"):
        # "dial tcp fe80::1:2: connection reset": the colon after the address is prose.
        text, end = text[:-1], end - 1
    address = text
    if address.startswith("["):
        if "]" not in address:
            return None
        address = address[1 : address.index("]")]
    elif "]" in address:
        return None
    address = address.split("%", 1)[0]
    try:
        parsed = ipaddress.IPv6Address(address)
    except ValueError:
        return None
    if parsed.is_unspecified or parsed.is_loopback:
        return None
    groups = [group for group in re.split(r"[:.]", address) if group]
    if len(groups) < 3 and not any(_DIGITS.search(group) for group in groups):
        return None
    return start, end


def mac_address(match: re.Match[str]) -> Span | None:
    """Not the all-zero or broadcast address; a dotted all-decimal year-led triple is a build."""
    text = _group(match, "pii")
    hexdigits = re.sub(r"[^0-9a-fA-F]", "", text).lower()
    if hexdigits in ("000000000000", "ffffffffffff"):
        return None
    if "." in text and text.replace(".", "").isdigit() and 1990 <= int(text[:4]) <= 2099:
        return None
    return pii_span(match)


# --- phone numbers ------------------------------------------------------------------


def _digit_count(text: str) -> int:
    return len(_DIGITS.findall(text))


def phone_e164(match: re.Match[str]) -> Span | None:
    """8 to 15 digits (E.164 allows 15), and not a ``+2026-11-28`` style date."""
    text = _group(match, "pii")
    if not 8 <= _digit_count(text) <= 15 or _DATE_PREFIX.match(text):
        return None
    return pii_span(match)


def phone_nanp(match: re.Match[str]) -> Span | None:
    """A separated NANP number not followed by more dotted or dashed digits."""
    if _group(match, "tail"):
        return None
    return pii_span(match)


def phone_in_context(match: re.Match[str]) -> Span | None:
    """After "phone", "tel", "call" ...: 7 to 15 digits that do not read as a date."""
    text = _group(match, "pii")
    if not 7 <= _digit_count(text) <= 15 or _DATE_PREFIX.match(text.lstrip("(")):
        return None
    return pii_span(match)


# --- secrets ------------------------------------------------------------------------


def looks_opaque(value: str, min_length: int) -> bool:
    """Whether ``value`` reads like generated secret material rather than prose or a number.

    Random tokens mix digits and letters (or both letter cases over a long run); words,
    CamelCase identifiers, dates and short counts do not.
    """
    if len(value) < min_length or _DATE_PREFIX.match(value):
        return False
    letters = sum(char.isalpha() for char in value)
    digits = sum(char.isdigit() for char in value)
    if digits >= 2 and letters >= 2:
        return True
    if digits == len(value):
        return len(value) >= 12
    core = value.strip("-_./+=~")
    if _CAMEL_WORDS.fullmatch(core) or core.islower() or core.isupper():
        return False
    has_upper = any(char.isupper() for char in value)
    has_lower = any(char.islower() for char in value)
    return has_upper and has_lower and len(value) >= 20


def vendor_token(match: re.Match[str]) -> Span | None:
    """A vendor-prefixed key (``sk-``, ``ghp_``, ``xoxb-`` ...) whose body is random."""
    body = _VENDOR_PREFIX.sub("", match.group(0), count=1)
    return pii_span(match) if looks_opaque(body, 10) else None


def bearer_token(match: re.Match[str]) -> Span | None:
    """``Bearer <token>``: the token must look generated ("Bearer authentication" is prose)."""
    return pii_span(match) if looks_opaque(_group(match, "pii"), 8) else None


def basic_credentials(match: re.Match[str]) -> Span | None:
    """``Basic <base64>`` that decodes to ``user:password``."""
    value = _group(match, "pii")
    try:
        decoded = base64.b64decode(value + "=" * (-len(value) % 4), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if ":" not in decoded or not decoded.isprintable():
        return None
    return pii_span(match)


_PASSWORD_WORDS = ("password", "passwd", "pwd", "passphrase")


def secret_value(match: re.Match[str]) -> Span | None:
    """The value after token/key/secret/password: opaque material, not a word or a count.

    Passwords are judged looser (any 6+ characters that are not a plain lowercase word)
    because people choose them; tokens and keys must look generated.
    """
    context = _group(match, "ctx").lower()
    value = _group(match, "pii")
    if any(word in context for word in _PASSWORD_WORDS):
        if len(value) < 6 or (value.isalpha() and value.islower()):
            return None
        return pii_span(match)
    return pii_span(match) if looks_opaque(value, 12) else None


# Query parameters that are counts or switches even though their names say "token".
_NOT_SECRET_VALUES = frozenset({"true", "false", "null", "none", "yes", "no", "on", "off"})


def query_secret(match: re.Match[str]) -> Span | None:
    """A credential-named query parameter, unless it is a count (``max_tokens=``) or a flag."""
    name = _group(match, "ctx").lower().lstrip("?&;").rstrip("=")
    value = _group(match, "pii")
    if name.endswith("tokens") or "max" in name or "limit" in name or "count" in name:
        return None
    if value.lower() in _NOT_SECRET_VALUES:
        return None
    return pii_span(match)


# --- names --------------------------------------------------------------------------

# Capitalised words that follow "user:"/"customer" in logs and are not anyone's name.
_NOT_A_NAME = frozenset(
    (
        "a", "an", "the", "this", "that", "these", "not", "no", "none", "null", "nil", "undefined",
        "unknown", "anonymous", "default", "admin", "administrator", "root", "system", "service",
        "server", "client", "user", "customer", "guest", "test", "demo", "sample", "example",
        "internal", "external", "enterprise", "business", "pro", "plus", "free", "premium",
        "basic", "standard", "team", "org", "organization", "account", "accounts", "agent", "bot",
        "api", "support", "billing", "sales", "ops", "dev", "prod", "production", "staging",
        "development", "tier", "plan", "quota", "limit", "rate", "group", "role", "policy",
        "profile", "settings", "data", "object", "record", "entry", "name", "email", "phone",
        "address", "card", "payment", "order", "invoice", "ticket", "case", "issue", "job", "task",
        "batch", "model", "region", "zone", "cluster", "node", "pod", "worker", "queue", "topic",
        "stream", "channel", "webhook", "endpoint", "gateway", "proxy", "cache", "database",
        "table", "index", "key", "secret", "password", "login", "logout", "auth", "authentication",
        "authorization", "access", "permission", "denied", "invalid", "missing", "expired",
        "revoked", "blocked", "suspended", "deleted", "disabled", "active", "inactive", "pending",
        "unauthorized", "forbidden", "error", "errors", "failed", "failure", "success", "timeout",
        "request", "requests", "response", "session", "sessions", "token", "tokens", "id", "ids",
        "is", "was", "has", "had", "will", "can", "may", "must", "should", "could", "would", "of",
        "for", "from", "to", "with", "by", "on", "in", "at", "via", "and", "or", "but", "if",
        "then", "else", "when", "while", "all", "any", "each", "every", "some", "many", "most",
        "other", "another", "new", "old", "first", "last", "next", "previous", "current", "same",
        "id", "owner", "contact", "member",
    )
)  # fmt: skip


def person_name(match: re.Match[str]) -> Span | None:
    """A capitalised name after a person context word, unless its first word is a log term."""
    name = _group(match, "pii")
    first = re.split(r"[ \t'\-]", name, maxsplit=1)[0].lower()
    if first in _NOT_A_NAME:
        return None
    return pii_span(match)


VALIDATORS: dict[str, Validator] = {
    "payment_card": payment_card,
    "us_ssn": us_ssn,
    "iban": iban,
    "ipv4": ipv4,
    "ipv6": ipv6,
    "mac_address": mac_address,
    "phone_e164": phone_e164,
    "phone_nanp": phone_nanp,
    "phone_in_context": phone_in_context,
    "vendor_token": vendor_token,
    "bearer_token": bearer_token,
    "basic_credentials": basic_credentials,
    "secret_value": secret_value,
    "query_secret": query_secret,
    "person_name": person_name,
}


def validate(name: str | None, match: re.Match[str]) -> Span | None:
    """Run validator ``name`` (``None``: accept) and return the span to redact or ``None``."""
    if name is None:
        return pii_span(match)
    return VALIDATORS[name](match)
