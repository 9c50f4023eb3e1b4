"""Lambda's 4 KB environment limit: every function fits, and a stack config that cannot fit
fails the program before any resource (early) or before the function (exactly)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pulumi
import pytest

from infra.lambda_environment import (
    LAMBDA_ENVIRONMENT_LIMIT,
    EnvironmentTooLargeError,
    checked_environment,
    environment_size,
)
from infra.tests.pulumi_harness import PROJECT, ProgramRun, RecordingMocks, run_program


def test_every_function_environment_fits(any_run: ProgramRun) -> None:
    for function in any_run.of_type("aws:lambda/function:Function"):
        variables = function.inputs["environment"]["variables"]
        assert environment_size(variables) <= LAMBDA_ENVIRONMENT_LIMIT, function.name


def _with_many_partners(values: dict[str, Any], count: int) -> dict[str, Any]:
    grown = copy.deepcopy(values)
    grown["ryuzen-telemetry:partners"] += [
        {"id": f"partner-{i:03d}", "modelPrefixes": [f"partner-{i:03d}/models/"]}
        for i in range(count)
    ]
    return grown


def test_a_stack_config_too_large_for_lambda_fails_before_any_resource(
    dev_values: dict[str, Any], fake_dist: Path
) -> None:
    mocks = RecordingMocks()
    with pytest.raises(EnvironmentTooLargeError) as refused:
        run_program(_with_many_partners(dev_values, 80), stack="dev", dist=fake_dist, mocks=mocks)
    message = str(refused.value)
    assert "STACK_CONFIG" in message and "4096-byte limit" in message
    assert mocks.created == []


def test_a_stack_config_that_fits_deploys(run, dev_values: dict[str, Any]) -> None:
    grown = run(_with_many_partners(dev_values, 20), "dev")
    for function in grown.of_type("aws:lambda/function:Function"):
        assert environment_size(function.inputs["environment"]["variables"]) <= 4096


def test_the_exact_check_refuses_what_only_resolved_names_push_over(fake_dist: Path) -> None:
    # Given names known only once resources exist; when they are resolved;
    # then the function's environment is refused before the function is declared.
    pulumi.runtime.settings.reset_options(project=PROJECT, stack="dev", preview=False)
    pulumi.runtime.set_mocks(RecordingMocks(), project=PROJECT, stack="dev", preview=False)
    long_name = pulumi.Output.from_input("b" * 3000)

    @pulumi.runtime.test
    def resolve() -> pulumi.Output[Any]:
        return checked_environment("sanitize", {"RAW_BUCKET": long_name, "X": "y" * 1200})

    with pytest.raises(EnvironmentTooLargeError, match=r"sanitize: .* over Lambda's 4096-byte"):
        resolve()
