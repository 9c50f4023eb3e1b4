"""Hypothesis properties of the scrubber over adversarial mixtures of PII, decoys,
markers, digit soup and arbitrary Unicode."""

from __future__ import annotations

import os

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ryuzen_sanitize.scrubber import RULE_IDS, detect, marker, scrub, second_scan

PII = [
    "maria.garcia@example.com",
    "+1 (415) 555-0134",
    "+44 20 7946 0958",
    "415.555.0134",
    "10.12.0.7:8443",
    "1.0.2.45",
    "2001:db8::8a2e:370:7334",
    "[2001:db8::1]:8443",
    "::ffff:10.0.0.1",
    "4111 1111 1111 1111",
    "378282246310005",
    "536-22-1234",
    "DE89 3704 0044 0532 0130 00",
    "GB82WEST12345698765432",
    "AKIAIOSFODNN7EXAMPLE",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    "sk-proj-Ab3_De6-Gh9Jk2Mn5Pq8St1Vw4Yz7Bc0Ef3Hi6",
    "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
    "Bearer abcDEF1234567890xyz",
    "Basic dXNlcjpwYXNzd29yZA==",
    "token=8f3a9c0d1e2b4a5f6a7b8c9d",
    "password: hunter22",
    "00:1A:2B:3C:4D:5E",
    "001a.2b3c.4d5e",
    "for user Maria Garcia",
    "customer: Omar Khan",
    "1600 Pennsylvania Avenue NW, Washington, DC 20500",
    "Hauptstraße 5, 10115 Berlin",
    "12 rue de la Paix",
    "postgres://admin:s3cret@db:5432/app",
    "https://h.example.com/cb?access_token=Zx9Wv8Ut7&x=1",
]
DECOYS = [
    "2026-11-28T05:35:14Z",
    "2026-11-28 05:35:14",
    "3f2b8c1e-4a5b-4c6d-8e9f-0a1b2c3d4e5f",
    "1.24.3",
    "v2.0.0-rc.1",
    "build 10.0.19045.3803",
    "version 1.0.2.45",
    "req_8f3a9c0d1e2b4a5f",
    "1234ms",
    "p99=845.2",
    "titan-large-2024-06-01",
    "/v1/chat/completions",
    "HTTP 503",
    "00:01:30",
    "5,000 tokens",
    "max_tokens=4096",
    "127.0.0.1",
    "std::vector",
]
SEPARATORS = [" ", "", ", ", ":", "-", ".", "/", "=", "@", "(", ")", "[", "]", "\n", "\t", "+"]
# Characters on which Rust's and Python's Unicode tables disagree (word characters,
# whitespace, case folding): the portable dialect must make them irrelevant.
ENGINE_TRAPS = [
    "\u0301",  # combining accent: a word character to Rust, not to Python
    "\x1c",  # a space to Python's str.isspace, not to Rust
    "\u00a0",  # no-break space
    "\u2028",  # line separator
    "\u212a",  # Kelvin sign: case-folds to "k"
    "\u017f",  # long s: case-folds to "s"
    "\u0130",  # dotted capital I
    "\u017fecret=",
    "toKen ",
    "\ufdd0",  # the engine's sentinel range
]

fragments = st.one_of(
    st.sampled_from(
        PII + DECOYS + SEPARATORS + ENGINE_TRAPS + [marker(rule_id) for rule_id in RULE_IDS]
    ),
    st.text(alphabet="0123456789 .-:+()[]/@abcdefABCDEF", max_size=24),
    st.text(max_size=12),
)
texts = st.lists(fragments, max_size=8).map("".join)
series = st.lists(st.one_of(st.none(), st.just(""), texts), max_size=10)

# 150 examples keep the suite fast; SCRUBBER_HYPOTHESIS_EXAMPLES=5000 for a long hunt.
PROPERTY_SETTINGS = settings(
    max_examples=int(os.environ.get("SCRUBBER_HYPOTHESIS_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@PROPERTY_SETTINGS
@given(series)
def test_second_scan_finds_nothing_in_scrubbed_output(values: list[str | None]) -> None:
    redacted = scrub(pl.Series(values, dtype=pl.String)).redacted.to_list()
    assert second_scan(redacted) == []


@PROPERTY_SETTINGS
@given(series)
def test_scrub_is_idempotent(values: list[str | None]) -> None:
    once = scrub(pl.Series(values, dtype=pl.String))
    twice = scrub(once.redacted)
    assert twice.redacted.to_list() == once.redacted.to_list()
    assert twice.counts == {}
    assert all(hits == [] for hits in twice.rules_hit.to_list())


@PROPERTY_SETTINGS
@given(series)
def test_shape_nulls_and_empty_strings_pass_through(values: list[str | None]) -> None:
    result = scrub(pl.Series(values, dtype=pl.String))
    assert result.redacted.len() == len(values) == result.rules_hit.len()
    for before, after, hits in zip(
        values, result.redacted.to_list(), result.rules_hit.to_list(), strict=True
    ):
        if before is None or before == "":
            assert after == before
            assert hits == []
        assert (after == before) == (hits == [])
    assert sum(result.counts.values()) >= sum(1 for hits in result.rules_hit if len(hits))


@PROPERTY_SETTINGS
@given(series)
def test_engines_agree_on_what_holds_pii(values: list[str | None]) -> None:
    # The Rust and Python engines must read every pattern alike: a text the second scan
    # flags is one the first pass flags, and a text it does not flag is left untouched.
    result = scrub(pl.Series(values, dtype=pl.String))
    flagged = {index for index, _ in second_scan(values)}
    for index, (before, after, hits) in enumerate(
        zip(values, result.redacted.to_list(), result.rules_hit.to_list(), strict=True)
    ):
        assert (index in flagged) == bool(hits), (before, hits)
        if index not in flagged:
            assert after == before
    assert detect(pl.Series(values, dtype=pl.String)).to_list() == result.rules_hit.to_list()
