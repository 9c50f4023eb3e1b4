"""Stack configuration: the repository's stack file loads, and bad entries are named."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from ryuzen_contracts.stack_config import (
    StackConfig,
    StackConfigError,
    load_stack_config,
    stack_file,
)


def _repo_root() -> Path:
    for parent in Path(__file__).resolve().parents:
        if (parent / "Pulumi.yaml").is_file():
            return parent
    raise RuntimeError("no Pulumi.yaml above the tests")


REPO = _repo_root()
DEV_STACK = REPO / "Pulumi.dev.yaml"
PARTNERS = "ryuzen-telemetry:partners"
CLIENTS = "ryuzen-telemetry:ingestClients"

BASE: dict[str, Any] = {
    "config": {
        "aws:region": "eu-west-1",
        PARTNERS: [
            {"id": "acme", "modelPrefixes": ["acme/"], "bundleRetentionDays": 90},
            {"id": "nimbus-ai", "modelPrefixes": ["nimbus/", "nimbus-labs/"]},
            {"id": "orbital", "modelPrefixes": ["orbital/"], "awsAccountId": "444455556666"},
        ],
        CLIENTS: [
            {"id": "edge-gateway", "allowedPartners": ["acme", "nimbus-ai", "orbital"]},
            {"id": "batch-runner", "allowedPartners": ["nimbus-ai"], "rateLimit": 20},
        ],
        "ryuzen-telemetry:onPii": "redact",
    }
}


def write_stack(tmp_path: Path, document: Any) -> Path:
    path = tmp_path / "Pulumi.test.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return path


def mutated(change: Callable[[dict[str, Any]], Any]) -> dict[str, Any]:
    document = copy.deepcopy(BASE)
    change(document["config"])
    return document


# --- the repository's own stack file ----------------------------------------------------


def test_dev_stack_file_loads() -> None:
    config = load_stack_config(DEV_STACK)

    assert len(config.partners) >= 3
    assert len(config.ingest_clients) >= 2
    assert config.on_pii in {"redact", "quarantine"}
    # Every client's partners exist (the model validator guarantees it; this guards the file).
    partner_ids = {p.id for p in config.partners}
    assert all(set(c.allowed_partners) <= partner_ids for c in config.ingest_clients)


def test_stack_file_path() -> None:
    assert stack_file(REPO, "dev") == DEV_STACK


def test_a_valid_stack_loads_with_defaults(tmp_path: Path) -> None:
    config = load_stack_config(write_stack(tmp_path, BASE))

    assert [p.id for p in config.partners] == ["acme", "nimbus-ai", "orbital"]
    nimbus = config.partner("nimbus-ai")
    assert nimbus is not None
    assert nimbus.bundle_retention_days == 90  # default
    assert nimbus.aws_account_id is None
    runner = config.client("batch-runner")
    assert runner is not None
    assert runner.rate_limit == 20
    assert runner.burst_limit == 100  # default
    assert config.retention.raw_hours == 2
    assert config.presigned_url_ttl_seconds == 900
    assert config.partner("ghost") is None
    assert config.client("ghost") is None


# --- routing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_id", "partner"),
    [
        pytest.param("acme/titan-1", "acme", id="acme"),
        pytest.param("nimbus/cirrus", "nimbus-ai", id="nimbus-first-prefix"),
        pytest.param("nimbus-labs/stratus", "nimbus-ai", id="nimbus-second-prefix"),
        pytest.param("orbital/x", "orbital", id="orbital"),
        pytest.param("acmex/titan", None, id="prefix-needs-the-slash"),
        pytest.param("nimbus-lab/x", None, id="near-miss"),
        pytest.param("unknown/model", None, id="unknown-owner"),
        pytest.param("", None, id="empty"),
        pytest.param("ACME/titan", None, id="case-sensitive"),
    ],
)
def test_partner_for_model(model_id: str, partner: str | None) -> None:
    config = load_stack_config(DEV_STACK)

    found = config.partner_for_model(model_id)

    assert (found.id if found else None) == partner


# --- JSON round trip (the Lambda environment form) ---------------------------------------


def test_to_json_from_json_round_trip() -> None:
    config = load_stack_config(DEV_STACK)

    text = config.to_json()

    assert StackConfig.from_json(text) == config
    assert '"modelPrefixes"' in text  # the stack-file spelling, not snake_case
    assert '"model_prefixes"' not in text
    assert "\n" not in text  # compact, fits an environment variable


def test_from_json_names_the_entry(tmp_path: Path) -> None:
    text = load_stack_config(DEV_STACK).to_json().replace('"id":"orbital"', '"id":"Orbital"', 1)

    with pytest.raises(StackConfigError, match=r"partners\[2\] 'Orbital'"):
        StackConfig.from_json(text)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("{not json", id="invalid-json"),
        pytest.param("[]", id="array"),
        pytest.param("{}", id="no-partners"),
    ],
)
def test_from_json_refuses_bad_input_with_stack_config_error(text: str) -> None:
    with pytest.raises(StackConfigError):
        StackConfig.from_json(text)


def test_from_pulumi_values_accepts_bare_keys() -> None:
    values = {"partners": [{"id": "acme", "modelPrefixes": ["acme/"]}], "onPii": "quarantine"}

    config = StackConfig.from_pulumi_values(values)

    assert config.on_pii == "quarantine"
    assert config.ingest_clients == []


# --- invalid entries are named in the message --------------------------------------------


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        pytest.param(
            lambda c: c[PARTNERS][1].update(id="Acme"),
            ["partners[1]", "'Acme'", "id"],
            id="partner-id-uppercase",
        ),
        pytest.param(
            lambda c: c[PARTNERS][1].update(id="../x"),
            ["partners[1]", "'../x'", "id"],
            id="partner-id-traversal",
        ),
        pytest.param(
            lambda c: c[PARTNERS][0].update(id="ab"),
            ["partners[0]", "'ab'"],
            id="partner-id-too-short",
        ),
        pytest.param(
            lambda c: c[PARTNERS][2].update(modelPrefixes=["acme/titan-"]),
            ["'acme'", "'orbital'", "'acme/'", "'acme/titan-'", "overlap"],
            id="overlapping-prefixes",
        ),
        pytest.param(
            lambda c: c[PARTNERS][2].update(modelPrefixes=["nimbus"]),
            ["'nimbus-ai'", "'orbital'", "'nimbus'", "overlap"],
            id="prefix-that-is-the-start-of-another",
        ),
        pytest.param(
            lambda c: c[PARTNERS].append({"id": "acme", "modelPrefixes": ["other/"]}),
            ["partners[3]", "'acme'", "duplicate id"],
            id="duplicate-partner",
        ),
        pytest.param(
            lambda c: c[CLIENTS].append({"id": "edge-gateway", "allowedPartners": ["acme"]}),
            ["ingestClients[2]", "'edge-gateway'", "duplicate id"],
            id="duplicate-client",
        ),
        pytest.param(
            lambda c: c[CLIENTS][1].update(allowedPartners=["nimbus-ai", "ghost-co"]),
            ["ingestClients[1]", "'batch-runner'", "unknown partner 'ghost-co'"],
            id="client-names-unknown-partner",
        ),
        pytest.param(
            lambda c: c[CLIENTS][0].update(allowedPartners=["Acme"]),
            ["ingestClients[0]", "'edge-gateway'", "allowedPartners"],
            id="client-names-invalid-partner-id",
        ),
        pytest.param(
            lambda c: c[CLIENTS][1].update(allowedPartners=[]),
            ["ingestClients[1]", "'batch-runner'", "allowedPartners"],
            id="client-with-no-partners",
        ),
        pytest.param(
            lambda c: c.update({"ryuzen-telemetry:onPii": "drop"}),
            ["onPii", "'redact' or 'quarantine'"],
            id="bad-onPii",
        ),
        pytest.param(
            lambda c: c[PARTNERS][0].update(modelPrefixes=["ACME/"]),
            ["partners[0]", "'acme'", "modelPrefixes"],
            id="bad-prefix",
        ),
        pytest.param(
            lambda c: c[PARTNERS][0].update(awsAccountId="1234"),
            ["partners[0]", "'acme'", "awsAccountId"],
            id="bad-account-id",
        ),
        pytest.param(
            lambda c: c[PARTNERS][0].update(awsAccountId="\u0661" * 12),
            ["partners[0]", "'acme'", "awsAccountId"],
            id="account-id-non-ascii-digits",
        ),
        pytest.param(
            lambda c: c[PARTNERS][0].update(bundleRetentionDays=0),
            ["partners[0]", "'acme'", "bundleRetentionDays"],
            id="retention-days-zero",
        ),
        pytest.param(
            lambda c: c[PARTNERS][0].update(model_prefixes=["x/"]),
            ["partners[0]", "'acme'", "model_prefixes"],
            id="unknown-partner-field",
        ),
        pytest.param(
            lambda c: c.update({"ryuzen-telemetry:retention": {"rawHours": 48}}),
            ["retention.rawHours"],
            id="raw-hours-over-a-day",
        ),
        pytest.param(
            lambda c: c.update({"ryuzen-telemetry:presignedUrlTtlSeconds": 30}),
            ["presignedUrlTtlSeconds"],
            id="ttl-too-short",
        ),
        pytest.param(
            lambda c: c.update({"ryuzen-telemetry:bogus": 1}),
            ["bogus"],
            id="unknown-key",
        ),
        pytest.param(lambda c: c.pop(PARTNERS), ["partners", "required"], id="no-partners"),
        pytest.param(lambda c: c.update({PARTNERS: []}), ["partners"], id="empty-partner-list"),
    ],
)
def test_invalid_entries_are_named(
    tmp_path: Path, change: Callable[[dict[str, Any]], Any], expected: list[str]
) -> None:
    path = write_stack(tmp_path, mutated(change))

    with pytest.raises(StackConfigError) as caught:
        load_stack_config(path)

    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    for fragment in expected:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    def change(config: dict[str, Any]) -> None:
        config[PARTNERS].append({"id": "acme", "modelPrefixes": ["other/"]})
        config[PARTNERS].append({"id": "zeta-co", "modelPrefixes": ["acme/"]})
        config[CLIENTS][0]["allowedPartners"].append("ghost-co")

    with pytest.raises(StackConfigError) as caught:
        load_stack_config(write_stack(tmp_path, mutated(change)))

    message = str(caught.value)
    assert "partners[3] 'acme': duplicate id" in message
    assert "partners 'acme' and 'zeta-co'" in message
    assert "unknown partner 'ghost-co'" in message


def test_the_same_partner_may_own_nested_prefixes(tmp_path: Path) -> None:
    document = mutated(lambda c: c[PARTNERS][0].update(modelPrefixes=["acme/", "acme/titan-"]))

    config = load_stack_config(write_stack(tmp_path, document))

    assert config.partners[0].model_prefixes == ["acme/", "acme/titan-"]


# --- files that are not stack files --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("config: [unclosed\n", "not valid YAML", id="invalid-yaml"),
        pytest.param("config:\n  a: b\n c: d\n", "not valid YAML", id="bad-indentation"),
        pytest.param("", "no 'config:' mapping", id="empty-file"),
        pytest.param("encryptionsalt: abc\n", "no 'config:' mapping", id="no-config-key"),
        pytest.param("config: 3\n", "no 'config:' mapping", id="config-not-a-mapping"),
        pytest.param("- a\n- b\n", "no 'config:' mapping", id="document-is-a-list"),
        pytest.param("config:\n  aws:region: eu-west-1\n", "partners", id="no-ryuzen-keys-at-all"),
    ],
)
def test_unreadable_stack_files(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "Pulumi.broken.yaml"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(StackConfigError) as caught:
        load_stack_config(path)

    assert str(path) in str(caught.value)
    assert expected in str(caught.value)


def test_non_string_config_keys_are_ignored_not_crashed_on(tmp_path: Path) -> None:
    document = copy.deepcopy(BASE)
    document["config"][1] = "a key YAML parsed as an int"

    config = load_stack_config(write_stack(tmp_path, document))

    assert len(config.partners) == 3


def test_other_namespaces_are_ignored(tmp_path: Path) -> None:
    document = mutated(lambda c: c.update({"aws:profile": "x", "other-project:key": 1}))

    assert load_stack_config(write_stack(tmp_path, document)).on_pii == "redact"


def test_config_is_frozen() -> None:
    config = load_stack_config(DEV_STACK)

    with pytest.raises(ValueError, match="frozen"):
        config.on_pii = "quarantine"  # type: ignore[misc]
