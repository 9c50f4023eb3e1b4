"""The program's shape (CONVENTIONS, Pulumi section): every resource belongs to a
component, every component's type token is ``ryuzen:index:<Class>``, and every child is
named after its component."""

from __future__ import annotations

import inspect

import pulumi

from infra import (
    api_keys,
    artifacts,
    audit,
    bundle_service,
    catalog,
    cleanup,
    ingest_api,
    monitoring,
    network,
    partner_access,
    queues,
    signing,
    stage_function,
    storage,
)
from infra.tests.pulumi_harness import ProgramRun

MODULES = (
    api_keys,
    artifacts,
    audit,
    bundle_service,
    catalog,
    cleanup,
    ingest_api,
    monitoring,
    network,
    partner_access,
    queues,
    signing,
    stage_function,
    storage,
)


def _parent_type(resource_urn: str) -> str:
    # A URN records its parent's type before a "$": "ryuzen:index:Storage$aws:kms/key:Key".
    qualified = resource_urn.split("::")[2]
    return qualified.split("$")[0] if "$" in qualified else ""


def test_every_resource_is_a_child_of_a_component(any_run: ProgramRun) -> None:
    for resource in any_run.resources:
        parent = _parent_type(resource.urn)
        if resource.typ.startswith("ryuzen:index:"):
            # Components are composed by the program, or nested in one (cleanup's functions).
            assert parent == "pulumi:pulumi:Stack" or parent.startswith("ryuzen:index:")
        else:
            assert parent.startswith("ryuzen:index:"), resource.urn


def test_children_are_named_after_their_component(any_run: ProgramRun) -> None:
    top = {
        r.name
        for r in any_run.resources
        if r.typ.startswith("ryuzen:index:") and _parent_type(r.urn) == "pulumi:pulumi:Stack"
    }
    assert all(name.startswith(f"ryuzen-{any_run.stack}-") for name in top)
    for resource in any_run.resources:
        if resource.name not in top:
            assert any(resource.name.startswith(f"{name}-") for name in top), resource.name


def test_type_tokens_match_the_classes() -> None:
    found = 0
    for module in MODULES:
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, pulumi.ComponentResource) and cls.__module__ == module.__name__:
                source = inspect.getsource(cls)
                assert f'"ryuzen:index:{name}"' in source, name
                assert "self.register_outputs(" in source, name
                found += 1
    assert found == 14
