"""The versioned PII rule set and its digest (the digest certificates cite).

Each rule is one regular expression in a *portable dialect* that both engines read the
same way: polars' Rust ``regex`` (first pass) and Python's ``re`` (second scan, spans).

- No lookaround and no backreferences (Rust has neither); validators do that work.
- No ``\\w``, ``\\d``, ``\\s`` or ``.``: their Unicode tables differ between the engines
  (Python's ``\\s`` takes U+001C, Rust's does not), so classes are spelled in ASCII.
- ``\\b`` and ``(?i:...)`` are ASCII-only in both: Rust gets ``(?-u:\\b)`` and
  ``(?i-u:...)``, Python compiles with ``re.ASCII``. Otherwise a combining accent
  before "123-45-6789" would be a word boundary to one engine and not the other.
- A rule that redacts only part of its match names that part ``pii``; the text in the
  groups ``ctx``/``lead`` before it and ``post``/``tail`` after it is kept (and is what
  validators look at). Rules without a validator keep exactly ``ctx`` and ``post``.

Order matters: rules run one after another over the text the previous rules left, so a
more specific rule must come before a broader one that would take part of its match.
URL credentials and query tokens come before EMAIL (``https://maria:pw@host`` must not
become an email), vendor tokens and JWTs before the Bearer/secret context rules (the
rule id then says what was found), IBAN before CREDIT_CARD (the digits of an IBAN),
CREDIT_CARD and SSN before PHONE (a phone rule would take part of a card number), MAC
before IPv6 (both are colon-separated hex; the IPv6 validator rejects MACs anyway), and
the context rules for names and addresses come last.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import cached_property

from ryuzen_sanitize.scrubber.validators import VALIDATORS

RULESET_VERSION = "2026.11.1"
DIALECT = "ryuzen-portable-regex/1"

_NS = r"\t\n\x0b\x0c\r "  # the ASCII whitespace both engines agree on, for classes
_HEX = "[0-9A-Fa-f]"
# Latin letters incl. Latin-1 and Latin Extended-A; that block alternates upper and
# lower case, so it appears in both classes.
_UP = "[A-ZÀ-ÖØ-ÞĀ-ž]"
_LO = "[a-zß-öø-ÿĀ-ž]"


@dataclass(frozen=True)
class Rule:
    """One detector: ``id`` names the kind of PII (and the ``[REDACTED:<id>]`` marker);
    ``variant`` tells apart several patterns for one kind."""

    id: str
    variant: str
    pattern: str
    validator: str | None = None
    description: str = ""
    # "a": ASCII semantics for \\b and case-insensitivity in both engines (see above).
    flags: str = field(default="a")

    def __post_init__(self) -> None:
        if self.validator is not None and self.validator not in VALIDATORS:
            raise ValueError(f"rule {self.key}: unknown validator {self.validator!r}")

    @property
    def key(self) -> str:
        """Unique name of this pattern, ``ID/variant``."""
        return f"{self.id}/{self.variant}"

    @property
    def marker(self) -> str:
        """The text a finding is replaced with."""
        return marker(self.id)

    @cached_property
    def rust_pattern(self) -> str:
        """The pattern as polars' Rust regex engine must read it (ASCII ``\\b``, ``(?i:``)."""
        return self.pattern.replace(r"\b", r"(?-u:\b)").replace("(?i:", "(?i-u:")

    @cached_property
    def python_regex(self) -> re.Pattern[str]:
        """The pattern compiled for Python's ``re`` with the same (ASCII) semantics."""
        return re.compile(self.pattern, re.ASCII)

    @cached_property
    def groups(self) -> frozenset[str]:
        """Named groups of the pattern."""
        return frozenset(self.python_regex.groupindex)


def marker(rule_id: str) -> str:
    """``[REDACTED:<RULE>]``. Brackets and a colon appear in no rule's value classes, so
    a marker can never be (part of) a finding itself."""
    return f"[REDACTED:{rule_id}]"


# --- patterns -----------------------------------------------------------------------

_URL_USERINFO = (
    rf"(?P<ctx>\b[A-Za-z][A-Za-z0-9+.\-]{{1,15}}://)(?P<pii>[^{_NS}/?#@\[\]<>\"']+)(?P<post>@)"
)
_URL_QUERY_SECRET = (
    r"(?P<ctx>[?&;](?i:[a-z0-9_.\-]*(?:token|secret|passw|apikey|api_key|api-key|signature"
    r"|credential|session|private_key|access_key)[a-z0-9_.\-]*|key|sig|code|otp|jwt|auth|sid"
    r"|pwd|pass)=)"
    rf"(?P<pii>[^{_NS}&#\[\]\"'<>][^{_NS}&#\"'<>]*)"
)
_JWT = r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*"
_AWS_KEY_ID = r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|APKA|AROA)[A-Z0-9]{16}\b"
_VENDOR_PREFIXED = (
    r"\b(?:sk-(?:proj-|svcacct-|admin-|ant-(?:api03-|admin01-)?)?[A-Za-z0-9_\-]{20,}"
    r"|gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,}|xox[abposr]-[A-Za-z0-9\-]{10,}"
    r"|glpat-[A-Za-z0-9_\-]{20,}|AIza[A-Za-z0-9_\-]{35}|[rsp]k_(?:live|test)_[A-Za-z0-9]{16,}"
    r"|hf_[A-Za-z0-9]{30,}|npm_[A-Za-z0-9]{36})"
)
_BEARER = r"(?P<ctx>\b(?i:bearer)[ \t]+)(?P<pii>[A-Za-z0-9\-._~+/]{8,}=*)"
_BASIC = r"(?P<ctx>\b(?i:basic)[ \t]+)(?P<pii>[A-Za-z0-9+/]{6,}={0,2})"
_CREDENTIAL_WORDS = (
    r"(?:api[_\-]?key|apikey|access[_\-]?key|secret[_\-]?key|private[_\-]?key|signing[_\-]?key"
    r"|auth[_\-]?key|encryption[_\-]?key|master[_\-]?key|client[_\-]?secret|secret|token"
    r"|password|passwd|pwd|passphrase|credentials?)"
)
# The word may end a compound name (aws_secret_access_key, x-api-key, db.password): a
# separator before it is as good as a word boundary.
_SECRET = (
    rf"(?P<ctx>(?:\b|[_.\-])(?i:{_CREDENTIAL_WORDS})\b"
    r"[\"']?[ \t]*(?:[:=]|=>|(?i:is)\b)?[ \t]*[\"']?)"
    r"(?P<pii>[A-Za-z0-9_\-./+=~!@$%^*]{6,})"
)
_EMAIL = (
    r"\b[A-Za-z0-9][A-Za-z0-9._%+\-]*@[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*\.[A-Za-z]{2,24}\b"
)
_IBAN = r"\b(?P<pii>[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?)\b"
_CARD = (
    r"(?P<lead>\+)?\b(?P<pii>[0-9]{13,19}"
    r"|[0-9]{4}(?: [0-9]{4}){2} [0-9]{1,4}(?: [0-9]{1,3})?"
    r"|[0-9]{4}(?:-[0-9]{4}){2}-[0-9]{1,4}(?:-[0-9]{1,3})?"
    r"|[0-9]{4}[ \-][0-9]{6}[ \-][0-9]{4,5})\b"
)
_SSN = r"\b(?P<pii>[0-9]{3}-[0-9]{2}-[0-9]{4}|[0-9]{3} [0-9]{2} [0-9]{4})\b(?P<tail>-[0-9])?"
_SSN_CONTEXT = (
    r"(?P<ctx>\b(?i:ssn|social[ \t]+security(?:[ \t]+(?:number|no))?)\b[ \t]*"
    r"(?:#|(?i:no|number)\b)?[ \t]*[:=]?[ \t]*)(?P<pii>[0-9]{9})\b"
)
_PHONE_E164 = (
    r"(?P<lead>^|[^0-9A-Za-z+_])"
    r"(?P<pii>\+[1-9][0-9]{0,2}(?:[ .\-]?(?:\([0-9]{1,4}\)|[0-9]{1,5})){1,6})\b"
)
_PHONE_NANP = (
    r"(?P<lead>^|[^0-9A-Za-z+_.\-/])"
    r"(?P<pii>(?:1[ .\-])?(?:\([2-9][0-9]{2}\) ?|[2-9][0-9]{2}[ .\-])[2-9][0-9]{2}[ .\-][0-9]{4})"
    r"\b(?P<tail>[.\-][0-9])?"
)
_PHONE_CONTEXT = (
    r"(?P<ctx>\b(?i:phone|tel|telephone|mobile|cell|cellphone|fax|sms|whatsapp|call|called"
    r"|dial|dialed|contact[ \t]+number|phone[ \t]+number)\b[ \t]*"
    r"(?:(?i:no|nr|number)\b\.?[ \t]*|#[ \t]*)?[:=]?[ \t]*)"
    r"(?P<pii>\(?\+?[0-9](?:[ .\-()]{0,2}[0-9]){6,14})\b"
)
_MAC = (
    rf"\b(?P<pii>{_HEX}{{2}}(?::{_HEX}{{2}}){{5}}|{_HEX}{{2}}(?:-{_HEX}{{2}}){{5}}"
    rf"|{_HEX}{{4}}\.{_HEX}{{4}}\.{_HEX}{{4}})\b"
)
# The IPv4-embedded form (::ffff:10.0.0.1) is the first alternative: otherwise the
# general form would stop at "::ffff:10", a valid address, and leave ".0.0.1" behind.
# "[" is not a lead character: the bracket belongs to the address ([2001:db8::1]:443),
# and a candidate must split into lead and address the same way on its own as in text.
_IPV6 = (
    r"(?P<lead>^|[^0-9A-Za-z_:.\[])"
    rf"(?P<pii>\[?(?:(?:{_HEX}{{1,4}}|:)(?::{_HEX}{{0,4}}){{0,6}}:[0-9]{{1,3}}(?:\.[0-9]{{1,3}}){{3}}"
    rf"|(?:{_HEX}{{1,4}}|:)(?::{_HEX}{{0,4}}){{1,7}})"
    r"(?:%[0-9A-Za-z]{1,15})?(?:\](?::[0-9]{1,5})?)?)"
)
# Only a version word ("v", "build", "sdk_version") or a product token ("Chrome/") is
# captured before an address: the validator drops those; no context means an address.
_VERSION_WORD = (
    r"(?i:(?:[a-z0-9]+[_.\-])?(?:v|ver|version|build|release|rel|rev|revision|firmware|fw"
    r"|sdk|kernel|os|patch|tag|image|driver|cuda|runtime|bios|agent|app|client|python|node"
    r"|chrome|windows))"
)
_IPV4 = (
    rf"(?P<ctx>\b(?:[A-Za-z][A-Za-z0-9_.\-]*/|{_VERSION_WORD}[ \t]*[:=#@_\-]?[ \t]*)|\b)"
    r"(?P<pii>[0-9]{1,3}(?:\.[0-9]{1,3}){3}(?::[0-9]{1,5})?)\b"
    r"(?P<tail>(?:\.[0-9]+)+|[\-+][A-Za-z][A-Za-z0-9.]*)?"
)

# A name: capitalised words (O'Brien, McDonald, Jean-Luc), an optional middle initial,
# particles (van, de, bin ...) between words. Capitals are what keep "for user admin"
# and "customer: unknown" out; the validator keeps "for user Admin" out.
_NAME_WORD = rf"{_UP}(?:'{_UP})?{_LO}+(?:{_UP}{_LO}+)?(?:-{_UP}{_LO}+)?"
_PARTICLE = r"(?:van|von|der|den|de|da|del|della|di|du|dos|la|le|bin|ibn|al|el|ter|ten)"
_NAME = rf"{_NAME_WORD}(?:[ \t]+(?:[A-Z]\.[ \t]+)?(?:{_PARTICLE}[ \t]+){{0,2}}{_NAME_WORD}){{0,2}}"
_NAME_CONTEXT = (
    r"(?i:(?:user|customer|client|member|account[ \t]+holder|accountholder|cardholder"
    r"|card[ \t]+holder|patient|employee|contact|subscriber|recipient|sender|owner|guest"
    r"|passenger|applicant|requested[ \t]+by|submitted[ \t]+by|created[ \t]+by"
    r"|initiated[ \t]+by|assigned[ \t]+to|approved[ \t]+by|attn|dear"
    r"|(?:full|display|contact|customer|user|first|last|holder)[_ \-]?name))"
)
_PERSON_IN_CONTEXT = rf"(?P<ctx>\b{_NAME_CONTEXT}\b[ \t]*[:=]?[ \t]*[\"']?)(?P<pii>{_NAME})"
_PERSON_HONORIFIC = rf"(?P<ctx>\b(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof)\.?[ \t]+)(?P<pii>{_NAME})"

_STREET_SUFFIX = (
    r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place"
    r"|Pl|Terrace|Ter|Parkway|Pkwy|Highway|Hwy|Circle|Cir|Square|Sq|Trail|Trl|Alley|Loop"
    r"|Plaza|Row)"
)
_US_ADDRESS = (
    r"\b[0-9]{1,6}[A-Za-z]?(?:-[0-9]{1,4})?[ \t]+"
    r"(?:(?:N|S|E|W|North|South|East|West|NE|NW|SE|SW)\.?[ \t]+)?"
    r"(?:[A-Z0-9][A-Za-z0-9'\-]*[ \t]+){0,3}[A-Z][A-Za-z'\-]*[ \t]+"
    rf"{_STREET_SUFFIX}\b\.?(?:[ \t]+(?:N|S|E|W|NE|NW|SE|SW)\b)?"
    r"(?:,?[ \t]+(?:Apt|Apartment|Suite|Ste|Unit|Floor|Fl|Room|Rm|#)\.?[ \t]*#?[0-9A-Za-z\-]+)?"
    r"(?:,[ \t]*[A-Z][A-Za-z.\-]*(?:[ \t]+[A-Z][A-Za-z.\-]*){0,2},?[ \t]+"
    r"(?:[A-Z]{2}[ \t]+[0-9]{5}(?:-[0-9]{4})?|[A-Z]{1,2}[0-9][A-Z0-9]?[ \t]?[0-9][A-Z]{2}))?"
)
_EU_POSTCODE_CITY = (
    r"(?:,?[ \t]+(?:[A-Z]{1,2}-)?(?:[0-9]{4}-[0-9]{3}|[0-9]{4,5}|[0-9]{3} [0-9]{2}"
    r"|[0-9]{4} ?[A-Z]{2})"
    rf"[ \t]+{_UP}{_LO}+(?:[ \t\-]{_UP}{_LO}+)?)?"
)
_EU_COMPOUND_ADDRESS = (
    rf"\b{_UP}{_LO}+(?:[ \-]{_UP}{_LO}+)*"
    r"(?:straße|strasse|str\.|weg|allee|platz|gasse|ring|damm|ufer|chaussee|pfad|straat"
    r"|laan|gracht|plein|kade|dijk|vej|gade|gatan|vägen|veien|gata|[ \-](?:Straße|Strasse"
    r"|Allee|Platz|Weg|Gasse|Ring|Damm))"
    rf"[ \t]+[0-9]{{1,4}}[a-zA-Z]?(?:[ \t]*[\-/][ \t]*[0-9]{{1,4}}[a-z]?)?{_EU_POSTCODE_CITY}"
)
_EU_TYPE_FIRST_ADDRESS = (
    r"\b(?:Calle|Avenida|Avda\.|Paseo|Plaza|Carrer|Via|Viale|Piazza|Corso|Largo|Rua"
    r"|Travessa|Praça|Rue|Avenue|Boulevard|Place|Chemin|Quai|Ulica|ul\.)[ \t]+"
    r"(?:(?:de|del|della|delle|dei|di|da|do|dos|das|du|des|la|le|les|el|los|las)[ \t]+"
    r"|(?:l|d)')*"
    rf"{_UP}{_LO}+(?:[ \t\-]+(?:(?:de|del|di|da|du|des|la|le)[ \t]+)?{_UP}{_LO}+){{0,3}}"
    r",?[ \t]+(?:n[º°o]\.?[ \t]*)?[0-9]{1,4}[a-zA-Z]?\b"
    rf"{_EU_POSTCODE_CITY}"
)
_FR_NUMBER_FIRST_ADDRESS = (
    r"\b[0-9]{1,4}(?:[ \t]?(?:bis|ter))?,?[ \t]+"
    r"(?:rue|avenue|boulevard|bd|chemin|place|impasse|allée|quai|cours|Rue|Avenue|Boulevard"
    r"|Chemin|Place|Impasse|Allée|Quai|Cours)[ \t]+"
    r"(?:(?:de|du|des|la|le|les)[ \t]+|(?:l|d)')*"
    rf"{_UP}{_LO}+(?:[ \t\-]+(?:(?:de|du|des|la|le)[ \t]+)?{_UP}{_LO}+){{0,3}}"
    rf"{_EU_POSTCODE_CITY}"
)


RULES: tuple[Rule, ...] = (
    Rule("URL_CREDENTIALS", "userinfo", _URL_USERINFO,
         description="user:password@ in a URL; scheme and host are kept"),
    Rule("URL_TOKEN", "query", _URL_QUERY_SECRET, "query_secret",
         description="credential-named query parameter values (token=, X-Amz-Signature=, sig=)"),
    Rule("JWT", "compact", _JWT, description="three-part base64url JSON Web Token"),
    Rule("AWS_ACCESS_KEY", "key_id", _AWS_KEY_ID, description="AWS access key id (AKIA/ASIA...)"),
    Rule("API_TOKEN", "vendor", _VENDOR_PREFIXED, "vendor_token",
         description="vendor-prefixed API keys: sk-, sk-proj-, ghp_, xox?-, glpat-, AIza ..."),
    Rule("BEARER_TOKEN", "bearer", _BEARER, "bearer_token",
         description="HTTP Bearer credentials; the word Bearer is kept"),
    Rule("BEARER_TOKEN", "basic", _BASIC, "basic_credentials",
         description="HTTP Basic credentials (base64 user:password)"),
    Rule("SECRET", "assignment", _SECRET, "secret_value",
         description="opaque value after token/key/secret/password words; the word is kept"),
    Rule("EMAIL", "address", _EMAIL, description="email address"),
    Rule("IBAN", "iban", _IBAN, "iban", description="IBAN, mod-97 and country length checked"),
    Rule("CREDIT_CARD", "pan", _CARD, "payment_card",
         description="card number: Luhn, issuer prefix/length, printed grouping"),
    Rule("SSN", "formatted", _SSN, "us_ssn", description="US SSN 123-45-6789 / 123 45 6789"),
    Rule("SSN", "context", _SSN_CONTEXT, "us_ssn", description="9 digits after 'SSN'"),
    Rule("PHONE", "e164", _PHONE_E164, "phone_e164",
         description="+<country> numbers with spaces, dashes, dots, parentheses"),
    Rule("PHONE", "nanp", _PHONE_NANP, "phone_nanp",
         description="(415) 555-0134, 415-555-0134, 415.555.0134, 1-800-555-0199"),
    Rule("PHONE", "context", _PHONE_CONTEXT, "phone_in_context",
         description="7-15 digits after phone/tel/mobile/call"),
    Rule("MAC_ADDRESS", "mac", _MAC, "mac_address",
         description="MAC address: colon, dash or Cisco dotted"),
    Rule("IPV6", "address", _IPV6, "ipv6",
         description="IPv6 full, compressed, v4-mapped, bracketed with port"),
    Rule("IPV4", "address", _IPV4, "ipv4",
         description="IPv4 with optional port; versions and reserved blocks excluded"),
    Rule("PERSON_NAME", "context", _PERSON_IN_CONTEXT, "person_name",
         description="capitalised name after 'for user', 'customer:' ...; context kept"),
    Rule("PERSON_NAME", "honorific", _PERSON_HONORIFIC, "person_name",
         description="capitalised name after Mr/Mrs/Ms/Dr"),
    Rule("STREET_ADDRESS", "us", _US_ADDRESS,
         description="number + street + suffix (+ unit, city, state ZIP / UK postcode)"),
    Rule("STREET_ADDRESS", "eu_compound", _EU_COMPOUND_ADDRESS,
         description="Hauptstraße 5, Kerkstraat 12 (+ postcode and city)"),
    Rule("STREET_ADDRESS", "eu_type_first", _EU_TYPE_FIRST_ADDRESS,
         description="Calle Mayor 10, Via Roma 15, Rue de Rivoli 12 (+ postcode, city)"),
    Rule("STREET_ADDRESS", "fr_number_first", _FR_NUMBER_FIRST_ADDRESS,
         description="12 rue de la Paix (+ postcode and city)"),
)  # fmt: skip

RULE_IDS: tuple[str, ...] = tuple(dict.fromkeys(rule.id for rule in RULES))


def ruleset_canonical_json() -> str:
    """The canonical JSON the digest is taken over: version, dialect and every rule."""
    document = {
        "ruleset_version": RULESET_VERSION,
        "dialect": DIALECT,
        "rules": [
            {
                "id": rule.id,
                "variant": rule.variant,
                "pattern": rule.pattern,
                "flags": rule.flags,
                "validator": rule.validator,
            }
            for rule in RULES
        ],
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def ruleset_digest() -> str:
    """Hex SHA-256 of :func:`ruleset_canonical_json`; changing any rule changes it."""
    return hashlib.sha256(ruleset_canonical_json().encode("ascii")).hexdigest()
