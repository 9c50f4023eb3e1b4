"""The REST API: every route exists, needs an API key, reaches the right function, and each
client and partner has its own usage plan; access logs carry no body."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable
from typing import Any

import pytest

from infra.ingest_api import ACCESS_LOG_FORMAT, ACCESS_LOG_GROUP_PREFIX, ROUTES
from infra.tests.pulumi_harness import ACCOUNT, REGION, ProgramRun, Registered, physical_name


def _paths(run: ProgramRun) -> dict[str, str]:
    """API Gateway resource id -> full path, rebuilt from the parent links."""
    root = run.of_type("aws:apigateway/restApi:RestApi")[0].outputs["rootResourceId"]
    by_id = {
        physical_name(resource.name): resource
        for resource in run.of_type("aws:apigateway/resource:Resource")
    }

    def path_of(resource_id: str) -> str:
        if resource_id == root:
            return ""
        resource = by_id[resource_id]
        return f"{path_of(resource.inputs['parentId'])}/{resource.inputs['pathPart']}"

    return {resource_id: path_of(resource_id) for resource_id in by_id}


def _routes(run: ProgramRun) -> dict[tuple[str, str], dict[str, Any]]:
    paths = _paths(run)
    return {
        (m.inputs["httpMethod"], paths[m.inputs["resourceId"]]): m.inputs
        for m in run.of_type("aws:apigateway/method:Method")
    }


def test_every_route_exists_and_needs_an_api_key(any_run: ProgramRun) -> None:
    routes = _routes(any_run)
    assert set(routes) == {(r.method, r.path) for r in ROUTES}
    for key, method in routes.items():
        assert method["apiKeyRequired"] is True, key
        assert method["authorization"] == "NONE", key  # the key is the credential
    assert routes[("GET", "/v1/bundles/{month}")]["requestParameters"] == {
        "method.request.path.month": True
    }


def test_each_route_reaches_its_function(any_run: ProgramRun) -> None:
    prefix = f"ryuzen-{any_run.stack}"
    invoke = {
        "ingest": any_run.named(f"{prefix}-ingest-fn").outputs["invokeArn"],
        "pull": any_run.named(f"{prefix}-bundle-pull-fn").outputs["invokeArn"],
    }
    paths = _paths(any_run)
    integrations = {
        (i.inputs["httpMethod"], paths[i.inputs["resourceId"]]): i.inputs
        for i in any_run.of_type("aws:apigateway/integration:Integration")
    }
    for route in ROUTES:
        integration = integrations[(route.method, route.path)]
        assert integration["type"] == "AWS_PROXY"
        assert integration["uri"] == invoke[route.target]


def test_each_permission_is_scoped_to_its_route(any_run: ProgramRun) -> None:
    api = any_run.of_type("aws:apigateway/restApi:RestApi")[0].outputs["executionArn"]
    sources = {
        p.inputs["sourceArn"]
        for p in any_run.of_type("aws:lambda/permission:Permission")
        if p.inputs["principal"] == "apigateway.amazonaws.com"
    }
    assert sources == {f"{api}/*/{r.method}{r.path}" for r in ROUTES}


def _plans(run: ProgramRun) -> dict[str, dict[str, Any]]:
    prefix = f"ryuzen-{run.stack}-api-plan-"
    return {
        p.name.removeprefix(prefix): p.inputs
        for p in run.of_type("aws:apigateway/usagePlan:UsagePlan")
    }


def test_each_client_and_partner_has_its_plan_and_key(any_run: ProgramRun, request) -> None:
    values = request.getfixturevalue(f"{any_run.stack}_values")
    clients = values["ryuzen-telemetry:ingestClients"]
    partners = values["ryuzen-telemetry:partners"]
    plans = _plans(any_run)
    assert set(plans) == {f"client-{c['id']}" for c in clients} | {
        f"partner-{p['id']}" for p in partners
    }
    for client in clients:
        plan = plans[f"client-{client['id']}"]
        assert plan["throttleSettings"] == {
            "rateLimit": client.get("rateLimit", 50),
            "burstLimit": client.get("burstLimit", 100),
        }
        quota = client.get("dailyQuota")
        assert plan.get("quotaSettings") == ({"limit": quota, "period": "DAY"} if quota else None)
    for partner in partners:
        plan = plans[f"partner-{partner['id']}"]
        assert plan["quotaSettings"] == {
            "limit": partner.get("pullDailyQuota", 1000),
            "period": "DAY",
        }
    keys = any_run.of_type("aws:apigateway/usagePlanKey:UsagePlanKey")
    assert len(keys) == len(plans)
    assert len({k.inputs["keyId"] for k in keys}) == len(keys)


def test_the_functions_map_exactly_their_callers_keys(any_run: ProgramRun, request) -> None:
    prefix = f"ryuzen-{any_run.stack}"
    values = request.getfixturevalue(f"{any_run.stack}_values")
    key_ids = any_run.outputs["apiKeyIds"]
    ingest = any_run.named(f"{prefix}-ingest-fn").inputs["environment"]["variables"]
    pull = any_run.named(f"{prefix}-bundle-pull-fn").inputs["environment"]["variables"]
    assert json.loads(ingest["API_KEY_CLIENTS"]) == {
        key: client for client, key in key_ids["ingestClients"].items()
    }
    assert json.loads(pull["API_KEY_PARTNERS"]) == {
        key: partner for partner, key in key_ids["partners"].items()
    }
    assert sorted(key_ids["partners"]) == sorted(
        p["id"] for p in values["ryuzen-telemetry:partners"]
    )


@pytest.mark.parametrize(
    "forbidden", ["body", "sourceIp", "userAgent", "header", "requestOverride"]
)
def test_access_logs_carry_no_body_or_caller_details(any_run: ProgramRun, forbidden: str) -> None:
    (stage,) = any_run.of_type("aws:apigateway/stage:Stage")
    log_format = stage.inputs["accessLogSettings"]["format"]
    assert log_format == ACCESS_LOG_FORMAT
    assert forbidden.lower() not in log_format.lower()
    (settings,) = any_run.of_type("aws:apigateway/methodSettings:MethodSettings")
    assert settings.inputs["settings"]["dataTraceEnabled"] is False


def test_gzip_bodies_reach_ingest_as_binary(any_run: ProgramRun) -> None:
    (api,) = any_run.of_type("aws:apigateway/restApi:RestApi")
    assert api.inputs["binaryMediaTypes"] == ["*/*"]


def test_the_api_url_is_a_stack_output(any_run: ProgramRun) -> None:
    assert any_run.outputs["apiUrl"].startswith("https://")


def _access_log_group(run: ProgramRun) -> Registered:
    group = run.named(f"ryuzen-{run.stack}-api-access-logs")
    (stage,) = run.of_type("aws:apigateway/stage:Stage")
    assert stage.inputs["accessLogSettings"]["destinationArn"] == group.outputs["arn"]
    return group


def _account_role_statements(run: ProgramRun) -> list[dict[str, Any]]:
    policy = run.named(f"ryuzen-{run.stack}-api-logging-policy")
    return list(json.loads(policy.inputs["policy"])["Statement"])


def test_access_logs_go_to_a_group_under_the_shared_prefix(any_run: ProgramRun) -> None:
    group = _access_log_group(any_run)
    assert group.inputs["name"] == f"/ryuzen/api-access/{any_run.stack}"
    assert group.inputs["name"].startswith(ACCESS_LOG_GROUP_PREFIX)


def test_the_account_role_writes_every_stacks_access_logs(any_run: ProgramRun) -> None:
    # The role is the account's (one per region, owned by one stack): it must reach the
    # access-log groups of the stacks that set manageApiGatewayAccount: false too.
    write, find = _account_role_statements(any_run)
    pattern = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{ACCESS_LOG_GROUP_PREFIX}*"
    assert write["Resource"] == [pattern]
    assert write["Action"] == [
        "logs:CreateLogStream",
        "logs:DescribeLogStreams",
        "logs:PutLogEvents",
    ]
    assert find["Action"] == ["logs:DescribeLogGroups"]
    (account,) = any_run.of_type("aws:apigateway/account:Account")
    assert (
        account.inputs["cloudwatchRoleArn"]
        == any_run.named(f"ryuzen-{any_run.stack}-api-logging-role").outputs["arn"]
    )
    # ... and the other stacks' groups fall under it: "staging" here stands for any.
    other = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{ACCESS_LOG_GROUP_PREFIX}staging"
    assert fnmatch.fnmatchcase(f"{other}:log-stream:abc", pattern)
    assert fnmatch.fnmatchcase(_access_log_group(any_run).outputs["arn"] + ":*", pattern)
    assert not fnmatch.fnmatchcase(
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/anything:*", pattern
    )


def test_a_stack_that_does_not_manage_the_account_still_logs_under_the_prefix(
    run: Callable[..., ProgramRun], prod_values: dict[str, Any]
) -> None:
    second = run({**prod_values, "ryuzen-telemetry:manageApiGatewayAccount": False}, "staging")
    assert not second.of_type("aws:apigateway/account:Account")
    assert "ryuzen-staging-api-logging-role" not in second.names()
    assert _access_log_group(second).inputs["name"] == "/ryuzen/api-access/staging"
