"""Per-rule tables: positives in many realistic shapes and hard negatives (decoys).

A positive is (text, rule id, secret): scrubbing the text must fire that rule, leave no
trace of the secret, and both the second scan and ``find_spans`` must agree. A negative
must pass through every path untouched.
"""

# The tables keep one case per line: easier to read and to extend than wrapped tuples.
# ruff: noqa: E501

from __future__ import annotations

import polars as pl
import pytest
from ryuzen_sanitize.scrubber import detect, find_spans, marker, scrub, second_scan

_JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwi"
    "aWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)

POSITIVES: list[tuple[str, str, str, str]] = [
    # (id, text, rule, secret)
    ("email-plain", "delivery failed for maria.garcia@example.com", "EMAIL", "maria.garcia@example.com"),
    ("email-angle-plus", "invalid recipient <omar.khan+alerts@mail.example.org>", "EMAIL", "omar.khan+alerts@mail.example.org"),
    ("email-upper", "notify JOHN_SMITH@EXAMPLE.CO.UK failed", "EMAIL", "JOHN_SMITH@EXAMPLE.CO.UK"),
    ("email-kv", "user=w.zhang@corp-mail.example.io;", "EMAIL", "w.zhang@corp-mail.example.io"),
    ("email-mailto", "mailto:priya@example.in bounced", "EMAIL", "priya@example.in"),
    ("phone-e164-parens", "SMS to +1 (415) 555-0134 failed", "PHONE", "+1 (415) 555-0134"),
    ("phone-e164-uk", "callback +44 20 7946 0958 unreachable", "PHONE", "+44 20 7946 0958"),
    ("phone-e164-uk-trunk", "callback +44 (0)20 7946 0958 unreachable", "PHONE", "+44 (0)20 7946 0958"),
    ("phone-e164-de-dash", "voice +49-30-901820 busy", "PHONE", "+49-30-901820"),
    ("phone-e164-fr", "appel +33 1 42 68 53 00 manqué", "PHONE", "+33 1 42 68 53 00"),
    ("phone-e164-jp", "SMS +81 3-1234-5678 failed", "PHONE", "+81 3-1234-5678"),
    ("phone-e164-compact", "otp sent to +14155550134", "PHONE", "+14155550134"),
    ("phone-e164-dots", "otp sent to +1.415.555.0134", "PHONE", "+1.415.555.0134"),
    ("phone-e164-in", "otp sent to +91 98765 43210", "PHONE", "+91 98765 43210"),
    ("phone-e164-luhn-valid", "fallback +4222222222222 failed", "PHONE", "+4222222222222"),
    ("phone-tel-uri", "tel:+1-212-555-0182 rejected", "PHONE", "+1-212-555-0182"),
    ("phone-nanp-parens", "callback (415) 555-0134 failed", "PHONE", "(415) 555-0134"),
    ("phone-nanp-dash", "callback 415-555-0134 failed", "PHONE", "415-555-0134"),
    ("phone-nanp-dots", "callback 415.555.0134 failed", "PHONE", "415.555.0134"),
    ("phone-nanp-tollfree", "call center 1-800-555-0199 closed", "PHONE", "1-800-555-0199"),
    ("phone-context-de", "phone: 030 901820", "PHONE", "030 901820"),
    ("phone-context-intl", "call 0044 20 7946 0958 failed", "PHONE", "0044 20 7946 0958"),
    ("phone-context-fr", "mobile no. 06 12 34 56 78", "PHONE", "06 12 34 56 78"),
    ("ipv4-port", "upstream refused connection from 10.12.0.7:8443", "IPV4", "10.12.0.7"),
    ("ipv4-kv", "client_ip=192.168.1.20 rate limited", "IPV4", "192.168.1.20"),
    ("ipv4-xff", "X-Forwarded-For: 203.0.113.45, 198.51.100.7", "IPV4", "198.51.100.7"),
    ("ipv4-parens", "handshake failed (172.16.254.1)", "IPV4", "172.16.254.1"),
    ("ipv4-public", "host 8.8.8.8 unreachable", "IPV4", "8.8.8.8"),
    ("ipv4-url-host", "GET https://34.201.12.9/v1/chat failed", "IPV4", "34.201.12.9"),
    ("ipv4-octet-pattern", "peer=1.0.2.45 closed", "IPV4", "1.0.2.45"),
    ("ipv6-full", "from 2001:0db8:85a3:0000:0000:8a2e:0370:7334 denied", "IPV6", "2001:0db8:85a3:0000:0000:8a2e:0370:7334"),
    ("ipv6-compressed", "from 2001:db8::8a2e:370:7334 denied", "IPV6", "2001:db8::8a2e:370:7334"),
    ("ipv6-link-local", "peer fe80::1ff:fe23:4567:890a lost", "IPV6", "fe80::1ff:fe23:4567:890a"),
    ("ipv6-bracket-port", "dial [2001:db8::1]:8443 refused", "IPV6", "2001:db8::1"),
    ("ipv6-mapped-v4", "client ::ffff:10.49.63.194 blocked", "IPV6", "10.49.63.194"),
    ("ipv6-trailing-colon", "dial tcp 2a02:1205:c6b0::7f: connection reset", "IPV6", "2a02:1205:c6b0::7f"),
    ("ipv6-zone", "neighbor fe80::1%eth0 stale", "IPV6", "fe80::1"),
    ("card-visa-spaces", "payment declined for card 4111 1111 1111 1111", "CREDIT_CARD", "4111 1111 1111 1111"),
    ("card-visa-compact", "pan=4111111111111111 declined", "CREDIT_CARD", "4111111111111111"),
    ("card-mc-dashes", "card 5555-5555-5555-4444 expired", "CREDIT_CARD", "5555-5555-5555-4444"),
    ("card-amex-4-6-5", "amex 3782 822463 10005 refused", "CREDIT_CARD", "3782 822463 10005"),
    ("card-discover", "card 6011000990139424 refused", "CREDIT_CARD", "6011000990139424"),
    ("card-mc-2series", "card 2223003122003222 refused", "CREDIT_CARD", "2223003122003222"),
    ("card-jcb", "card 3530111333300000 refused", "CREDIT_CARD", "3530111333300000"),
    ("card-visa-13", "legacy visa 4222222222222 refused", "CREDIT_CARD", "4222222222222"),
    ("ssn-dashes", "kyc failed for ssn 536-22-1234", "SSN", "536-22-1234"),
    ("ssn-spaces", "identity 536 22 1234 mismatch", "SSN", "536 22 1234"),
    ("ssn-context-compact", "SSN: 219099999 on file", "SSN", "219099999"),
    ("iban-de-spaced", "SEPA payout to DE89 3704 0044 0532 0130 00 rejected", "IBAN", "DE89 3704 0044 0532 0130 00"),
    ("iban-de-compact", "SEPA payout to DE89370400440532013000 rejected", "IBAN", "DE89370400440532013000"),
    ("iban-gb", "beneficiary GB82 WEST 1234 5698 7654 32 invalid", "IBAN", "GB82 WEST 1234 5698 7654 32"),
    ("iban-fr-letters", "compte FR14 2004 1010 0505 0001 3M02 606 bloqué", "IBAN", "FR14 2004 1010 0505 0001 3M02 606"),
    ("iban-nl", "iban NL91ABNA0417164300 closed", "IBAN", "NL91ABNA0417164300"),
    ("iban-it", "iban IT60X0542811101000000123456 closed", "IBAN", "IT60X0542811101000000123456"),
    ("iban-be-trailing-word", "BE68 5390 0754 7034 SENT back", "IBAN", "BE68 5390 0754 7034"),
    ("aws-akia", "InvalidAccessKeyId: AKIAIOSFODNN7EXAMPLE does not exist", "AWS_ACCESS_KEY", "AKIAIOSFODNN7EXAMPLE"),
    ("aws-asia", "assume role failed for ASIAY34FZKBOKMUTVV7A", "AWS_ACCESS_KEY", "ASIAY34FZKBOKMUTVV7A"),
    ("jwt", f"token verification failed: {_JWT}", "JWT", _JWT),
    ("jwt-after-bearer", f"Authorization: Bearer {_JWT}", "JWT", _JWT),
    ("api-openai", "invalid api key sk-4fGh7Jk9LmN2pQ5rS8tV1wX3yZ6aB0cD2eF4gH6jK8lM0nP2", "API_TOKEN", "sk-4fGh7Jk9LmN2pQ5rS8tV1wX3yZ6aB0cD2eF4gH6jK8lM0nP2"),
    ("api-openai-proj", "key sk-proj-Ab3_De6-Gh9Jk2Mn5Pq8St1Vw4Yz7Bc0Ef3Hi6 revoked", "API_TOKEN", "sk-proj-Ab3_De6-Gh9Jk2Mn5Pq8St1Vw4Yz7Bc0Ef3Hi6"),
    ("api-github", "push denied for ghp_16C7e42F292c6912E7710c838347Ae178B4a", "API_TOKEN", "ghp_16C7e42F292c6912E7710c838347Ae178B4a"),
    ("api-slack", "slack xoxb-1234567890-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx failed", "API_TOKEN", "xoxb-1234567890-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"),
    ("api-gitlab", "clone with glpat-9Xk2Lm4Np6Qr8St0Uv1W failed", "API_TOKEN", "glpat-9Xk2Lm4Np6Qr8St0Uv1W"),
    ("api-stripe", "charge failed sk_live_4eC39HqLyjWDarjtT1zdp7dc", "API_TOKEN", "sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
    ("bearer", "Authorization: Bearer abcDEF1234567890xyz rejected", "BEARER_TOKEN", "abcDEF1234567890xyz"),
    ("bearer-lower", "401 (bearer 9f8e7d6c5b4a39281706f5e4d3c2b1a0)", "BEARER_TOKEN", "9f8e7d6c5b4a39281706f5e4d3c2b1a0"),
    ("basic", "proxy auth: Basic dXNlcjpwYXNzd29yZA== refused", "BEARER_TOKEN", "dXNlcjpwYXNzd29yZA=="),
    ("secret-token-eq", "token=8f3a9c0d1e2b4a5f6a7b8c9d expired", "SECRET", "8f3a9c0d1e2b4a5f6a7b8c9d"),
    ("secret-api-key-colon", "api_key: AbC123dEf456GhI789 is invalid", "SECRET", "AbC123dEf456GhI789"),
    ("secret-client-secret", "client_secret=pt1d7O4OIcDFysfjla0x3V2srkHOyc827qXWjCVN", "SECRET", "pt1d7O4OIcDFysfjla0x3V2srkHOyc827qXWjCVN"),
    ("secret-aws-secret", "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "SECRET", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
    ("secret-password", "login failed password=hunter22", "SECRET", "hunter22"),
    ("secret-header", "x-api-key: 9f86d081884c7d659a2feaa0c55ad015", "SECRET", "9f86d081884c7d659a2feaa0c55ad015"),
    ("secret-json", 'config {"secret": "abcdef0123456789abcd"}', "SECRET", "abcdef0123456789abcd"),
    ("secret-token-space", "invalid token 7Gh2Kq9ZxW4mP8vR1tY6", "SECRET", "7Gh2Kq9ZxW4mP8vR1tY6"),
    ("mac-colon", "device 00:1A:2B:3C:4D:5E not registered", "MAC_ADDRESS", "00:1A:2B:3C:4D:5E"),
    ("mac-dash", "lease for 00-1a-2b-3c-4d-5e expired", "MAC_ADDRESS", "00-1a-2b-3c-4d-5e"),
    ("mac-cisco", "port security 001a.2b3c.4d5e violation", "MAC_ADDRESS", "001a.2b3c.4d5e"),
    ("name-for-user", "retry for user Maria Garcia failed", "PERSON_NAME", "Maria Garcia"),
    ("name-customer-colon", "customer: Omar Khan", "PERSON_NAME", "Omar Khan"),
    ("name-requested-by", "refund requested by Chloé Dubois", "PERSON_NAME", "Chloé Dubois"),
    ("name-particles", "cardholder Jean-Luc van der Berg declined", "PERSON_NAME", "Jean-Luc van der Berg"),
    ("name-apostrophe", "user: Siobhan O'Brien locked", "PERSON_NAME", "Siobhan O'Brien"),
    ("name-field", "full_name=Zoë McDonald", "PERSON_NAME", "Zoë McDonald"),
    ("name-dear", "Dear Kwame Mensah, your export failed", "PERSON_NAME", "Kwame Mensah"),
    ("name-honorific", "escalated to Mr. John Smith", "PERSON_NAME", "John Smith"),
    ("name-assigned", "ticket assigned to Priya Patel", "PERSON_NAME", "Priya Patel"),
    ("name-middle-initial", "for customer Anna K. Nowak", "PERSON_NAME", "Anna K. Nowak"),
    ("addr-us-full", "ship to 1600 Pennsylvania Avenue NW, Washington, DC 20500", "STREET_ADDRESS", "1600 Pennsylvania Avenue NW, Washington, DC 20500"),
    ("addr-us-short", "label for 742 Evergreen Terrace failed", "STREET_ADDRESS", "742 Evergreen Terrace"),
    ("addr-uk", "deliver to 221B Baker Street", "STREET_ADDRESS", "221B Baker Street"),
    ("addr-us-suite", "office 350 Fifth Ave, Suite 3300, New York, NY 10118", "STREET_ADDRESS", "350 Fifth Ave, Suite 3300, New York, NY 10118"),
    ("addr-uk-postcode", "sent to 10 Downing Street, London SW1A 2AA", "STREET_ADDRESS", "10 Downing Street, London SW1A 2AA"),
    ("addr-de-compound", "Lieferung an Hauptstraße 5, 10115 Berlin fehlgeschlagen", "STREET_ADDRESS", "Hauptstraße 5, 10115 Berlin"),
    ("addr-de-separate", "Berliner Straße 12a unbekannt", "STREET_ADDRESS", "Berliner Straße 12a"),
    ("addr-nl", "adres Kerkstraat 12, 1017 GC Amsterdam", "STREET_ADDRESS", "Kerkstraat 12, 1017 GC Amsterdam"),
    ("addr-fr", "livraison 12 rue de la Paix, 75002 Paris", "STREET_ADDRESS", "12 rue de la Paix, 75002 Paris"),
    ("addr-es", "envío a Calle Mayor 10, 28013 Madrid", "STREET_ADDRESS", "Calle Mayor 10, 28013 Madrid"),
    ("addr-it", "consegna Via Roma 15, 00184 Roma", "STREET_ADDRESS", "Via Roma 15, 00184 Roma"),
    ("addr-se", "leverans Storgatan 3, 111 22 Stockholm", "STREET_ADDRESS", "Storgatan 3, 111 22 Stockholm"),
    ("addr-pt", "entrega Rua Augusta 100, 1100-053 Lisboa", "STREET_ADDRESS", "Rua Augusta 100, 1100-053 Lisboa"),
    ("url-creds-postgres", "connect failed: postgres://admin:s3cret@db.internal:5432/app", "URL_CREDENTIALS", "admin:s3cret"),
    ("url-creds-https", "pull from https://deploy:Xy7pQ2@registry.example.com/v2/ denied", "URL_CREDENTIALS", "deploy:Xy7pQ2"),
    ("url-creds-user-only", "open https://maria@example.com/login", "URL_CREDENTIALS", "maria@"),
    ("url-creds-redis", "redis://:p4ssw0rd@cache:6379 refused", "URL_CREDENTIALS", ":p4ssw0rd"),
    ("url-token", "GET https://api.example.com/v1/export?token=abc123XYZ&format=csv 403", "URL_TOKEN", "abc123XYZ"),
    ("url-token-amz", "expired https://b.s3.amazonaws.com/o?X-Amz-Signature=9f86d0818a2feaa0c55ad015", "URL_TOKEN", "9f86d0818a2feaa0c55ad015"),
    ("url-token-access", "callback https://h.example.com/cb?id=42&access_token=Zx9Wv8Ut7 failed", "URL_TOKEN", "Zx9Wv8Ut7"),
    ("url-token-api-key", "GET /v1/geo?api_key=AIzaX9k2&q=paris", "URL_TOKEN", "AIzaX9k2"),
    ("url-token-sig", "SAS https://acct.blob.core.windows.net/c?sv=2022&sig=Qm9vYmFy%2B", "URL_TOKEN", "Qm9vYmFy%2B"),
]  # fmt: skip

NEGATIVES: list[tuple[str, str]] = [
    ("iso-timestamp", "retry at 2026-11-28T05:35:14Z"),
    ("iso-timestamp-micro-offset", "at 2026-11-28T05:35:14.123456+00:00 done"),
    ("datetime-space", "scheduled 2026-11-28 05:35:14"),
    ("date-us", "on 10/28/2026 05:35"),
    ("uuid", "request 3f2b8c1e-4a5b-4c6d-8e9f-0a1b2c3d4e5f failed"),
    ("uuid-2", "uuid 550e8400-e29b-41d4-a716-446655440000"),
    ("semver", "sdk 1.24.3 deprecated"),
    ("semver-pre", "client v2.0.0-rc.1 incompatible"),
    ("build-4part-big", "build 10.0.19045.3803"),
    ("build-4part-version", "version 1.0.2.45"),
    ("build-4part-v", "agent v1.0.2.45 outdated"),
    ("build-4part-kv", "sdk_version=1.0.2.45"),
    ("build-4part-release-dash", "release-1.0.2.45 rolled back"),
    ("build-4part-product", "Chrome/120.0.0.1 unsupported"),
    ("build-4part-prerelease", "image 1.0.2.45-beta pulled"),
    ("dotted-5part", "oid 1.3.6.1.4.1 unknown"),
    ("hex-request-id", "req_8f3a9c0d1e2b4a5f timed out"),
    ("hex-32", "trace a3f5c9e1d2b4a6f8e0c2d4b6a8f0e2c4"),
    ("hex-span", "span 00f067aa0ba902b7"),
    ("git-sha", "commit 9fceb02d0ae598e95dc970b74767f19372d61af8"),
    ("sha256-digest", "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"),
    ("latency-ms", "upstream latency 1234ms exceeds budget"),
    ("latency-p99", "p99=845.2 p50=91.7"),
    ("latency-commas", "latency 1,234.5 ms"),
    ("model-version", "model titan-large-2024-06-01 unavailable"),
    ("model-id", "acme/titan-large:2024-06-01 overloaded"),
    ("model-gpt", "gpt-4o-2024-08-06 deprecated"),
    ("http-path", "POST /v1/chat/completions returned HTTP 503"),
    ("http-path-query", "GET /v1/users/12345/orders?page=2&limit=50"),
    ("http-version", "HTTP/1.1 503 Service Unavailable"),
    ("port-alone", "listening on port 8443"),
    ("duration", "queue wait 00:01:30"),
    ("duration-2", "idempotency window 00:15:00"),
    ("token-count", "batch of 5,000 tokens truncated"),
    ("max-tokens", "max_tokens=4096 exceeds context"),
    ("max-tokens-query", "GET /v1/complete?max_tokens=100000&stream=true"),
    ("token-limit", "token limit exceeded: 8500 > 8192"),
    ("bearer-prose", "Bearer token expired"),
    ("bearer-prose-2", "Bearer authentication required"),
    ("basic-prose", "Basic authentication failed"),
    ("password-prose", "password reset failed"),
    ("secret-prose", "secret rotation failed for kms-key-prod"),
    ("user-lowercase", "user admin not found"),
    ("user-deny-list", "for user Admin"),
    ("customer-unknown", "customer: unknown tier"),
    ("customer-deny-list", "customer: Enterprise plan"),
    ("loopback", "bound to 127.0.0.1:9090"),
    ("unspecified", "listening on 0.0.0.0:8080"),
    ("netmask", "netmask 255.255.255.0 applied"),
    ("ipv4-out-of-range", "value 999.1.1.1 invalid"),
    ("ipv4-octet-256", "value 256.1.1.1 invalid"),
    ("cpp-path", "std::vector allocation failed"),
    ("hex-word-path", "in add::cafe handler"),
    ("ipv6-loopback", "connect ::1 refused"),
    ("epoch-ms", "epoch 1764308114000 out of range"),
    ("epoch-s", "timestamp 1764308114"),
    ("arn", "arn:aws:iam::111122223333:role/deploy denied"),
    ("arn-lambda", "arn:aws:lambda:eu-west-1:111122223333:function:sanitize"),
    ("sk-words", "sk-learn-compat-layer-v2 not installed"),
    ("task-dash", "task-runner-queue-eu-west-1-worker-pool-2 busy"),
    ("cache-key", "cache key user:1234:profile evicted"),
    ("shard", "shard 3 of 12, offset 123456789"),
    ("order-number", "order #123456789 shipped"),
    ("percent", "error rate +12.5% over baseline"),
    ("card-not-luhn", "card 4111 1111 1111 1112 declined"),
    ("card-bad-grouping", "ref 4111 11111 11111 11"),
    ("iban-bad-check", "iban DE89 3704 0044 0532 0130 01"),
    ("ssn-area-000", "id 000-12-3456"),
    ("ssn-area-666", "id 666-12-3456"),
    ("ssn-area-9xx", "id 912-12-3456"),
    ("ssn-group-00", "id 123-00-4567"),
    ("mac-zero", "mac 00:00:00:00:00:00"),
    ("mac-broadcast", "mac ff:ff:ff:ff:ff:ff"),
    ("mac-dotted-build", "build 2024.1105.0930"),
    ("ubuntu", "Ubuntu 22.04.3 LTS"),
    ("python", "Python 3.11.7 (main)"),
    ("hresult", "Error 0x80070005"),
    ("line-col", "line 1234, column 56"),
    ("counts", "1,234,567 requests"),
    ("cost", "cost $0.0042 per call"),
    ("etag", 'ETag "33a64df551425fcc55e4d42a148795d9f25f89d4"'),
    ("retry", "retrying in 30s (attempt 2/5)"),
    ("region", "region eu-west-1 degraded"),
    ("email-no-tld", "user@localhost rejected"),
    ("package-at-version", "requires package@1.2.3"),
    ("phone-short-plus", "+12 ms over budget"),
    ("address-prose", "HTTP 503 Service Unavailable"),
    ("address-count-prose", "retry 3 times"),
    ("tz-offset", "2026-11-28T05:35:14+01:00"),
    ("dash-digits", "build 2024-11-28-1"),
]


@pytest.mark.parametrize(
    ("text", "rule", "secret"),
    [pytest.param(text, rule, secret, id=case) for case, text, rule, secret in POSITIVES],
)
def test_positive_is_redacted(text: str, rule: str, secret: str) -> None:
    # Given a text carrying one kind of PII, when it is scrubbed,
    result = scrub(pl.Series([text]))
    redacted = result.redacted[0]
    # then the rule fires, its marker replaces the secret and nothing of it is left,
    assert rule in result.rules_hit[0].to_list()
    assert marker(rule) in redacted
    assert secret not in redacted
    assert result.counts[rule] >= 1
    # and the independent second scan finds nothing in the output.
    assert second_scan([redacted]) == []


@pytest.mark.parametrize(
    ("text", "rule", "secret"),
    [pytest.param(text, rule, secret, id=case) for case, text, rule, secret in POSITIVES],
)
def test_positive_is_found_by_every_path(text: str, rule: str, secret: str) -> None:
    assert rule in detect(pl.Series([text]))[0].to_list()
    assert (0, rule) in second_scan([text])
    spans = [f for f in find_spans(text) if f.rule == rule]
    start = text.index(secret.rstrip("@"))
    assert any(f.start <= start < f.end for f in spans), spans


@pytest.mark.parametrize(("text",), [pytest.param(text, id=case) for case, text in NEGATIVES])
def test_hard_negative_is_untouched(text: str) -> None:
    result = scrub(pl.Series([text]))
    assert result.redacted[0] == text
    assert result.rules_hit[0].to_list() == []
    assert result.counts == {}
    assert second_scan([text]) == []
    assert find_spans(text) == []


def test_context_words_are_kept() -> None:
    texts = pl.Series(
        [
            "retry for user Maria Garcia failed",
            "customer: Omar Khan",
            "token=8f3a9c0d1e2b4a5f6a7b8c9d expired",
            "Authorization: Bearer abcDEF1234567890xyz",
            "postgres://admin:s3cret@db.internal:5432/app",
            "GET /x?token=abc123XYZ&format=csv",
            "upstream refused connection from 10.12.0.7:8443",
        ]
    )
    assert scrub(texts).redacted.to_list() == [
        "retry for user [REDACTED:PERSON_NAME] failed",
        "customer: [REDACTED:PERSON_NAME]",
        "token=[REDACTED:SECRET] expired",
        "Authorization: Bearer [REDACTED:BEARER_TOKEN]",
        "postgres://[REDACTED:URL_CREDENTIALS]@db.internal:5432/app",
        "GET /x?token=[REDACTED:URL_TOKEN]&format=csv",
        "upstream refused connection from [REDACTED:IPV4]",
    ]


def test_every_rule_id_has_positives() -> None:
    from ryuzen_sanitize.scrubber import RULES

    covered = {rule for _, _, rule, _ in POSITIVES}
    assert covered == {rule.id for rule in RULES}
    variants_with_positive = {
        rule.key for rule in RULES for _, text, _, _ in POSITIVES if rule.python_regex.search(text)
    }
    assert variants_with_positive == {rule.key for rule in RULES}
