"""Necessary conditions for each rule to match, so the second scan can skip rules cheaply.

Each rule gets a :class:`Prefilter`: conditions that every text holding a match of the
rule's pattern satisfies, whatever the validator then says. Where one fails, the rule
cannot match, so the second scan skips the rule's pattern and validator and still
reaches the same verdict. A prefilter has two parts, both of which must hold; its
``why`` argues for each.

The *shape* of a text: its UTF-8 bytes (``surrogatepass``) mapped through a class
table, ASCII digit -> ``0``, ASCII capital -> ``A``, ``[a-z_]`` -> ``a``, any other
ASCII character -> ``.``, every byte of a non-ASCII character -> ``U``. An ASCII stretch
of the text keeps its place and length in the shape, one class byte per character.

``needs``: traits of the whole text, read off its shape (``int in bytes`` is a memchr),
once per text, shared by every rule:

- ``symbol``: the text holds a character outside ASCII ``[A-Za-z0-9_]`` (punctuation, a
  blank, a control character or any non-ASCII character): ``.`` or ``U`` in the shape.
- ``digit``: the text holds an ASCII digit ``[0-9]``: ``0`` in the shape.
- ``upper``: the text holds an ASCII capital ``[A-Z]`` or a non-ASCII character, so
  surely any character of the rules' capital class ``[A-ZÀ-ÖØ-ÞĀ-ž]``: ``A`` or ``U``.

``gates``: Python ``re`` patterns that must each be *found* (``search``), in order, in
the text itself, in ``text.lower()`` (*folded*) or in the shape. Text and folded gates
are compiled with ``re.ASCII`` like the rules, so ``(?i:...)`` folds exactly the ASCII
letters the rule's ``(?i:...)`` folds and every class means the same characters.

- Folded gates serve the rules' case-insensitive words: a lowercase alternation is much
  faster for ``re`` to scan for. Lowering works character by character and maps ASCII
  letters to ASCII lower case (other characters may change length, e.g. U+0130 becomes
  two, but stay in place), so an ASCII stretch of the text reappears, lowered and
  contiguous, in ``text.lower()``. Every folded gate below covers an ASCII stretch.
- Shape gates replace each character by its class byte; a run of digits becomes a run
  of ``0``, a literal ``re`` finds fast. Every shape gate below covers an ASCII stretch
  (PERSON_NAME's also a non-ASCII character: ``U``, like each of its UTF-8 bytes).

A gate is one of two things, and the ``why`` says which:

- a *piece*: a stretch of the rule's pattern every match goes through, copied verbatim
  (``\\b`` at its ends dropped). Any match of the rule holds a substring matching the
  piece, and ``re.search`` tries every position with full backtracking, so it finds one.
- a *weakening* of a piece: parts replaced by something that accepts at least as much (a
  bigger class; an alternation by literals one of which every alternative contains; a
  zero-width assertion dropped; a prefix or suffix cut off; on the shape, characters by
  their classes). Whatever the piece matches holds a match of the weakening.

Where a rule has two gates, the first is a cheap weakening of the second. Gates start,
where they can, with a literal or a rare class: ``re`` then scans for that first
character in C instead of trying the whole gate at every position.

Each prefilter records a fingerprint of the pattern it was derived from. If a rule's
pattern (or flags) change, its stale prefilter is ignored (the rule then runs on every
text, which is always exact) until it is derived again; ``test_scrubber_second_scan``
fails in the meantime.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from ryuzen_sanitize.scrubber.rules import RULES, Rule

TRAITS = ("symbol", "digit", "upper")
ALL_TRAITS = (1 << len(TRAITS)) - 1

_CAPITAL = "[A-ZÀ-ÖØ-ÞĀ-ž]"  # the rules' capital class: a name word's first letter
_HEX = "[0-9A-Fa-f]"

Subject = Literal["text", "folded", "shape"]


class Gate(NamedTuple):
    """A ``re`` pattern that must be found in ``on``: the text, ``text.lower()`` or the
    shape (a ``bytes`` pattern then, given here as its ASCII text)."""

    pattern: str
    on: Subject = "text"


def _text(pattern: str) -> Gate:
    return Gate(pattern, "text")


def _folded(pattern: str) -> Gate:
    return Gate(pattern, "folded")


def _shape(pattern: str) -> Gate:
    return Gate(pattern, "shape")


@dataclass(frozen=True)
class Prefilter:
    """Necessary conditions for rule ``key`` (``ID/variant``) to match a text: the
    ``needs`` traits, then every gate in order.

    ``derived_from`` is the :func:`fingerprint` of the pattern they were derived from.
    """

    key: str
    derived_from: str
    needs: frozenset[str]
    gates: tuple[Gate, ...]
    why: str

    def __post_init__(self) -> None:
        if not self.needs <= set(TRAITS):
            raise ValueError(f"prefilter {self.key}: unknown trait in {sorted(self.needs)}")


def fingerprint(pattern: str) -> str:
    """The first 16 hex digits of the SHA-256 of a rule's pattern text."""
    return hashlib.sha256(pattern.encode()).hexdigest()[:16]


def _class_table() -> bytes:
    table = bytearray(b"U" * 256)
    for byte in range(128):
        char = chr(byte)
        if "0" <= char <= "9":
            table[byte] = ord("0")
        elif "A" <= char <= "Z":
            table[byte] = ord("A")
        elif "a" <= char <= "z" or char == "_":
            table[byte] = ord("a")
        else:
            table[byte] = ord(".")
    return bytes(table)


_CLASSES = _class_table()
_SYMBOL, _DIGIT, _CAPITAL_BYTE, _NON_ASCII = (ord(c) for c in ".0AU")


def shape(text: str) -> bytes:
    """The shape of ``text`` (see the module docstring)."""
    return text.encode("utf-8", "surrogatepass").translate(_CLASSES)


def trait_mask(text_shape: bytes) -> int:
    """The traits of the text of this shape: bit ``i`` set when it has ``TRAITS[i]``."""
    non_ascii = _NON_ASCII in text_shape
    return (
        (non_ascii or _SYMBOL in text_shape)
        | (_DIGIT in text_shape) << 1
        | (non_ascii or _CAPITAL_BYTE in text_shape) << 2
    )


def traits(text: str) -> frozenset[str]:
    """The names of the traits ``text`` has."""
    mask = trait_mask(shape(text))
    return frozenset(name for bit, name in enumerate(TRAITS) if mask >> bit & 1)


def compile_gate(gate: Gate) -> Callable[[Any], re.Match[Any] | None]:
    """The ``search`` of ``gate``'s pattern: over ``bytes`` for a shape gate, else ``str``."""
    if gate.on == "shape":
        return re.compile(gate.pattern.encode("ascii")).search
    return re.compile(gate.pattern, re.ASCII).search


def holds(prefilter: Prefilter, text: str) -> bool:
    """Whether ``text`` meets every condition of ``prefilter`` (for tests and checks)."""
    if not prefilter.needs <= traits(text):
        return False
    subjects: dict[Subject, str | bytes] = {
        "text": text,
        "folded": text.lower(),
        "shape": shape(text),
    }
    return all(compile_gate(gate)(subjects[gate.on]) is not None for gate in prefilter.gates)


def _needs(*names: str) -> frozenset[str]:
    return frozenset(names)


# Why a rule needs ``symbol``: every rule but AWS_ACCESS_KEY, API_TOKEN, IBAN and
# CREDIT_CARD has a mandatory character outside [A-Za-z0-9_] (``://``, ``[?&;]``, ``.``,
# ``@``, ``+``, a blank, a separator), or a ``\b`` right after a word that ends in a letter
# and is followed by more of the match, so the next character is not an ASCII word
# character. Each ``why`` names which, then argues for each gate.

PREFILTERS: tuple[Prefilter, ...] = (
    Prefilter(
        "URL_CREDENTIALS/userinfo",
        "f5fef4deb5267ea5",
        _needs("symbol"),
        (_text(r"://[^\t\n\x0b\x0c\r /?#@\[\]<>\"']+@"),),
        "symbol: `://`. Gate, piece: the end of ctx (`://`), all of pii, post (`@`).",
    ),
    Prefilter(
        "URL_TOKEN/query",
        "1548c384b677c22c",
        _needs("symbol"),
        (
            _text(
                r"[?&;][A-Za-z0-9_.\-]*(?i:token|secret|pass|key|sig|credential|session|code"
                r"|otp|jwt|auth|sid|pwd)[A-Za-z0-9_.\-]*="
            ),
        ),
        "symbol: `[?&;]`. Gate, weakening of ctx: after `[?&;]` each name alternative is "
        "made of `[a-z0-9_.-]` (either case) and contains one of these words, matched "
        "case-insensitively like the rule (passw -> pass; apikey, api_key, api-key, "
        "private_key, access_key -> key; signature -> sig); then `=`.",
    ),
    Prefilter(
        "JWT/compact",
        "1eaafc1f8845a1a2",
        _needs("symbol", "upper"),
        (_text(r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ"),),
        "symbol: `.`; upper: `J`. Gate, piece: the first segment (without \\b) up to the "
        "second `eyJ`.",
    ),
    Prefilter(
        "AWS_ACCESS_KEY/key_id",
        "43c28d44f23b83a0",
        _needs("upper"),
        (_text(r"(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|APKA|AROA)[A-Z0-9]{16}"),),
        "upper: `A`. Gate, piece: the whole pattern without its two \\b.",
    ),
    Prefilter(
        "API_TOKEN/vendor",
        "17b8329e45ee2351",
        _needs(),
        (_text(r"sk-|gh[pousr]_|github_pat_|xox[abposr]-|glpat-|AIza|k_live_|k_test_|hf_|npm_"),),
        "No trait (`ghp_...` is all word characters). Gate, weakening: every alternative "
        "starts with one of these (sk-proj-, sk-ant-... start with sk-; "
        "`[rsp]k_(?:live|test)_` holds k_live_ or k_test_).",
    ),
    Prefilter(
        "BEARER_TOKEN/bearer",
        "42efaa156846cf43",
        _needs("symbol"),
        (_folded(r"bearer[ \t]+[A-Za-z0-9\-._~+/]{8}"),),
        "symbol: `[ \\t]+`. Folded gate, piece: ctx without \\b and the first 8 "
        "characters of pii (`{8,}`); all ASCII, so lowered in place, and the class holds "
        "the lowered letters.",
    ),
    Prefilter(
        "BEARER_TOKEN/basic",
        "8ef09474b4c09127",
        _needs("symbol"),
        (_folded(r"basic[ \t]+[A-Za-z0-9+/]{6}"),),
        "symbol: `[ \\t]+`. Folded gate, piece: ctx without \\b and the first 6 "
        "characters of pii (`{6,}`); all ASCII, so lowered in place, and the class holds "
        "the lowered letters.",
    ),
    Prefilter(
        "SECRET/assignment",
        "8b42c1e93498f622",
        _needs("symbol"),
        (
            _folded(
                r"(?:key|secret|token|pass|pwd|credential)[a-z]*[\"']?[ \t]*(?:[:=]|=>|is)?"
                r"[ \t]*[\"']?[A-Za-z0-9_\-./+=~!@$%^*]{6}"
            ),
        ),
        "symbol: the credential word ends in a letter, \\b follows and pii (6+ "
        "characters) is still to come, so the next character is not `[A-Za-z0-9_]`. "
        "Folded gate, weakening of the word, the rest of ctx and pii's first 6 "
        "characters: every credential word ends with one of these words plus letters "
        "(all *key forms end with key, client_secret with secret; password, passwd, "
        "passphrase are pass + letters; credentials? is credential + s?); the rest of "
        "ctx is verbatim but for its \\b (dropped) and `(?i:is)` (lowered); pii's class "
        "holds the lowered letters. All ASCII, so lowered in place.",
    ),
    Prefilter(
        "EMAIL/address",
        "497fcbdcd88e8101",
        _needs("symbol"),
        (_text(r"@[A-Za-z0-9][A-Za-z0-9.\-]*\.[A-Za-z]{2}"),),
        "symbol: `@`. Gate, weakening of `@` and the domain: the domain starts with "
        "`[A-Za-z0-9]`, holds only `[A-Za-z0-9.-]` and ends with `.` and 2+ letters.",
    ),
    Prefilter(
        "IBAN/iban",
        "73ea27d1cf30335d",
        _needs("digit", "upper"),
        (_shape(r"AA00(?:\.?[A0]{4}){2}"),),
        "digit, upper: `[A-Z]{2}[0-9]{2}`. Shape gate, weakening of the start of pii "
        "(`[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2}`: the group repeats 2 to 7 times).",
    ),
    Prefilter(
        "CREDIT_CARD/pan",
        "52f69d927486a8a1",
        _needs("digit"),
        (_shape(r"0000\.?0000"),),
        "digit: pii. Shape gate, weakening of pii: 13-19 digits hold 8 in a row; the "
        "space- and dash-grouped forms start `dddd dddd` / `dddd-dddd`; the 4-6-5 and "
        "4-6-4 forms start `dddd[ -]dddddd`, which holds `dddd[ -]dddd`.",
    ),
    Prefilter(
        "SSN/formatted",
        "bfe8a16808bf7208",
        _needs("symbol", "digit"),
        (_shape(r"\.00\.0000"),),
        "symbol: `-` or a space; digit: pii. Shape gate, weakening of pii: "
        "`ddd-dd-dddd` holds `-dd-dddd`, `ddd dd dddd` holds ` dd dddd`.",
    ),
    Prefilter(
        "SSN/context",
        "4bbd3cba265461c1",
        _needs("symbol", "digit"),
        (_shape("000000000"), _folded(r"(?:ssn|social)[A-Za-z \t#:=]*[0-9]{9}")),
        "symbol: `social[ \\t]+...`, or the \\b after `ssn` with pii still to come; "
        "digit: pii. Shape gate, weakening of pii: 9 digits. "
        "Folded gate, weakening of ctx and pii: `ssn` or `social`, the rest "
        "of ctx (security, number, no, blanks, `#`, `:`, `=`: all in the class), the 9 "
        "digits of pii; all ASCII, so lowered in place.",
    ),
    Prefilter(
        "PHONE/e164",
        "0c4f8f5df889e167",
        _needs("symbol", "digit"),
        (_text(r"\+[1-9]"),),
        "symbol: `+`; digit: `[1-9]`. Gate, piece: the first two characters of pii.",
    ),
    Prefilter(
        "PHONE/nanp",
        "3abceeb338ab08ab",
        _needs("symbol", "digit"),
        (_shape(r"000\.0000"),),
        "symbol: `[ .\\-]`; digit: pii. Shape gate, weakening of the end of pii, which "
        "every alternative shares: `[2-9][0-9]{2}[ .\\-][0-9]{4}`.",
    ),
    Prefilter(
        "PHONE/context",
        "6303b16e640573c9",
        _needs("symbol", "digit"),
        (
            _shape(r"0(?:\.{0,2}0){6}"),
            _folded(
                r"(?:phone|tel|mobile|cell|fax|sms|whatsapp|call|dial|contact)"
                r"[A-Za-z \t.#:=]*\(?\+?[0-9]"
            ),
        ),
        "symbol: the context word ends in a letter and \\b follows with pii still to "
        "come; digit: pii. Shape gate, weakening of pii (`\\(?\\+?[0-9]` then "
        "`(?:[ .\\-()]{0,2}[0-9]){6,14}`): 7 digits, at most 2 symbols between two. "
        "Folded gate, weakening of ctx and the start of pii: every context word starts "
        "with one of these (telephone -> tel, cellphone -> cell, called -> call, dialed "
        "-> dial, contact/phone number -> contact/phone), the rest of ctx is letters, "
        "blanks, `.`, `#`, `:`, `=`, and pii starts `\\(?\\+?[0-9]`; all ASCII, so "
        "lowered in place.",
    ),
    Prefilter(
        "MAC_ADDRESS/mac",
        "4fc00953cba0912a",
        _needs("symbol"),
        (
            _shape(r"\.[0Aa]{2}(?:\.[0Aa]{2}){4}|\.[0Aa]{4}\.[0Aa]{4}"),
            _text(
                rf":{_HEX}{{2}}(?::{_HEX}{{2}}){{4}}|-{_HEX}{{2}}(?:-{_HEX}{{2}}){{4}}"
                rf"|\.{_HEX}{{4}}\.{_HEX}{{4}}"
            ),
        ),
        "symbol: `:`, `-` or `.`. Second gate, piece of each pii alternative: its "
        "separated tail (five `:hh`, five `-hh`, `.hhhh.hhhh`). Shape gate, weakening of "
        "the second.",
    ),
    Prefilter(
        "IPV6/address",
        "1dcb217b3ed0fed2",
        _needs("symbol"),
        (
            _text(r":(?<=[0-9A-Fa-f:]:)"),
            _text(r"(?:^|[^0-9A-Za-z_:.\[])\[?(?:[0-9A-Fa-f]{1,4}|:):"),
        ),
        "symbol: `:`. Second gate, piece: lead, `\\[?`, the first `(?:hex{1,4}|:)` that "
        "both alternatives start with, and the `:` right after it in both (the first "
        "`:hex{0,4}`, or the `:` before the IPv4 part). First gate, weakening of its "
        "last two characters: a `:` after a hex digit or `:` (written as a lookbehind so "
        "that `re` scans for the `:` first).",
    ),
    Prefilter(
        "IPV4/address",
        "f9863f714c2890aa",
        _needs("symbol", "digit"),
        (_text(r"\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]"),),
        "symbol: `.`; digit: octets. Gate, piece: the last three octets of pii "
        "(`(?:\\.[0-9]{1,3}){3}`), the last cut to its first digit.",
    ),
    Prefilter(
        "PERSON_NAME/context",
        "6440906e8aa0c1b7",
        _needs("symbol", "upper"),
        (
            _shape(r"\.A|U"),
            _folded(
                r"a(?:ccount|pplicant|ssigned|pproved|ttn)|c(?:ustomer|lient|ontact|reated)"
                r"|dear|employee|guest|holder|initiated|member|name|owner"
                r"|p(?:atient|assenger)|r(?:ecipient|equested)|s(?:ubscriber|ender|ubmitted)"
                r"|user"
            ),
        ),
        "upper: the name's first letter u is in `[A-ZÀ-ÖØ-ÞĀ-ž]`. symbol and shape "
        "gate: the character c before u ends ctx. Either ctx ends with one of "
        "`[ \\t:=\"']` (shape `.`) and u is `A` or non-ASCII (`U`); or c is the context "
        "word's last letter and the \\b between c and u makes u non-ASCII (`U`). Second "
        "gate (folded), weakening of the context word: "
        "each alternative contains one of these (account holder -> account, cardholder "
        "-> holder, requested by -> requested, assigned to -> assigned, *name -> name), "
        "grouped by first letter so that `re` tries few at each position; all ASCII, so "
        "lowered in place.",
    ),
    Prefilter(
        "PERSON_NAME/honorific",
        "4a11ddbd7f42e216",
        _needs("symbol", "upper"),
        (_text(rf"(?:Mr|Mrs|Ms|Miss|Mx|Dr|Prof)\.?[ \t]+{_CAPITAL}"),),
        "symbol: `[ \\t]+`; upper: `M`, `D` or `P`. Gate, piece: ctx without \\b and the "
        "name's first letter.",
    ),
    Prefilter(
        "STREET_ADDRESS/us",
        "7b1b845d35877ff3",
        _needs("symbol", "digit", "upper"),
        (
            _shape(r"0[Aa]?\."),
            _text(
                r"[ \t](?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court"
                r"|Ct|Way|Place|Pl|Terrace|Ter|Parkway|Pkwy|Highway|Hwy|Circle|Cir|Square|Sq"
                r"|Trail|Trl|Alley|Loop|Plaza|Row)\b"
            ),
        ),
        "symbol: `[ \\t]+`; digit: the house number; upper: the `[A-Z]` word before the "
        "suffix. Second gate, piece: the last blank before the street suffix, the suffix, "
        "its \\b. Shape gate, weakening of a piece: the house number "
        "(`[0-9]{1,6}[A-Za-z]?(?:-[0-9]{1,4})?`) ends with a digit, or with a letter "
        "after a digit, and a blank follows.",
    ),
    Prefilter(
        "STREET_ADDRESS/eu_compound",
        "54464637760573a5",
        _needs("symbol", "digit", "upper"),
        (
            _shape(r"\.0"),
            _text(
                r"(?:straße|strasse|str\.|weg|allee|platz|gasse|ring|damm|ufer|chaussee|pfad"
                r"|straat|laan|gracht|plein|kade|dijk|vej|gade|gatan|vägen|veien|gata"
                r"| (?:Straße|Strasse|Allee|Platz|Weg|Gasse|Ring|Damm)"
                r"|-(?:Straße|Strasse|Allee|Platz|Weg|Gasse|Ring|Damm))[ \t]+[0-9]"
            ),
        ),
        "symbol: `[ \\t]+`; digit: the house number; upper: the name starts with "
        "`[A-ZÀ-ÖØ-ÞĀ-ž]`. Second gate, piece: the street-type alternation (its "
        "`[ \\-](?:...)` branch split in two), the blanks, the house number's first "
        "digit. Shape gate, weakening: the last two characters of that piece.",
    ),
    Prefilter(
        "STREET_ADDRESS/eu_type_first",
        "7833833a2e848cc9",
        _needs("symbol", "digit", "upper"),
        (
            _text(
                r"(?:Calle|Avenida|Avda\.|Paseo|Plaza|Carrer|Via|Viale|Piazza|Corso|Largo|Rua"
                r"|Travessa|Praça|Rue|Avenue|Boulevard|Place|Chemin|Quai|Ulica|ul\.)[ \t]"
            ),
        ),
        "symbol: `[ \\t]+`; digit: the house number; upper: the street name starts with "
        "`[A-ZÀ-ÖØ-ÞĀ-ž]`. Gate, piece: the street-type word (without \\b) and the blank "
        "after it.",
    ),
    Prefilter(
        "STREET_ADDRESS/fr_number_first",
        "97d0022c5ad38bb6",
        _needs("symbol", "digit", "upper"),
        (
            _shape(r"0\.|0aaa\."),
            _text(
                r"[ \t](?:rue|avenue|boulevard|bd|chemin|place|impasse|allée|quai|cours|Rue"
                r"|Avenue|Boulevard|Chemin|Place|Impasse|Allée|Quai|Cours)[ \t]"
            ),
        ),
        "symbol: `[ \\t]+`; digit: the house number; upper: the street name starts with "
        "`[A-ZÀ-ÖØ-ÞĀ-ž]`. Second gate, piece: the last blank before the street type, "
        "the type, the blank after it. Shape gate, weakening of the start "
        "(`[0-9]{1,4}(?:[ \\t]?(?:bis|ter))?,?[ \\t]+`): a digit, then a blank or comma, "
        "or three letters and then one.",
    ),
)


def current_prefilters() -> dict[str, Prefilter]:
    """``rule key -> prefilter`` for the rules whose prefilter matches their pattern."""
    by_key = {prefilter.key: prefilter for prefilter in PREFILTERS}
    return {
        rule.key: by_key[rule.key]
        for rule in RULES
        if rule.key in by_key and is_current(by_key[rule.key], rule)
    }


def is_current(prefilter: Prefilter, rule: Rule) -> bool:
    """Whether ``prefilter`` was derived from ``rule``'s pattern as it is now."""
    return (
        prefilter.key == rule.key
        and prefilter.derived_from == fingerprint(rule.pattern)
        and rule.flags == "a"
    )
