"""IngestApi: the stack's one REST API, its routes, stage, access logs and usage plans.

Routes (every method requires an API key; the Lambda maps the key's id to a caller):

| method | path | function |
|---|---|---|
| POST | ``/v1/events`` | ingest |
| GET | ``/v1/bundles`` | bundle pull |
| GET | ``/v1/bundles/{month}`` | bundle pull |
| GET | ``/v1/keys/signing`` | bundle pull |

Every body reaches the functions base64-encoded (``binaryMediaTypes: */*``): ingest takes
gzip bodies, which API Gateway would otherwise mangle as text.

Each ingest client and each partner gets a usage plan with its own rate, burst and daily
quota from the stack config. Access logs are JSON lines of request metadata only — no
body, no header value, no source IP — and execution logging stays off (its data trace
would log bodies).

API Gateway writes access logs with one CloudWatch role per account and region, which
one stack there manages (``manageApiGatewayAccount``) for every API in the account. So
every stack names its access-log group under ``ACCESS_LOG_GROUP_PREFIX`` and that role
may write to the whole prefix: another stack's API (``manageApiGatewayAccount: false``)
still gets its access logs, and no other log group of the account is writable.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
from ryuzen_contracts.stack_config import IngestClient, Partner

from infra.api_keys import ApiKeys
from infra.iam_statements import allow, policy_document, service_trust_policy

STAGE_NAME = "live"
# Every stack's access-log group: /ryuzen/api-access/<stack> (see the module docstring).
ACCESS_LOG_GROUP_PREFIX = "/ryuzen/api-access/"
ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "requestTime": "$context.requestTimeEpoch",
        "httpMethod": "$context.httpMethod",
        "resourcePath": "$context.resourcePath",
        "status": "$context.status",
        "responseLength": "$context.responseLength",
        "integrationLatency": "$context.integrationLatency",
        "apiKeyId": "$context.identity.apiKeyId",
        "error": "$context.error.message",
    },
    separators=(",", ":"),
)


@dataclass(frozen=True)
class Route:
    """One method on one path, and which function answers it."""

    method: str
    path: str
    target: str  # "ingest" or "pull"


ROUTES = (
    Route("POST", "/v1/events", "ingest"),
    Route("GET", "/v1/bundles", "pull"),
    Route("GET", "/v1/bundles/{month}", "pull"),
    Route("GET", "/v1/keys/signing", "pull"),
)


@dataclass
class IngestApiArgs:
    """The functions behind the routes, the keys and who gets which limits."""

    ingest_function: aws.lambda_.Function
    pull_function: aws.lambda_.Function
    api_keys: ApiKeys
    clients: Sequence[IngestClient]
    partners: Sequence[Partner]
    log_retention_days: int
    # The stack's name: its access-log group is ACCESS_LOG_GROUP_PREFIX + stack.
    stack: str
    # API Gateway's CloudWatch role is an account-and-region setting (see stack_config).
    manage_account: bool
    account_id: str
    region: str
    partition: str


class IngestApi(pulumi.ComponentResource):
    """The REST API in front of ingest and the partner pull API."""

    rest_api: aws.apigateway.RestApi
    stage: aws.apigateway.Stage
    url: pulumi.Output[str]

    def __init__(
        self, name: str, args: IngestApiArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ryuzen:index:IngestApi", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.rest_api = aws.apigateway.RestApi(
            f"{name}-api",
            description="Ryuzen Telemetry: telemetry in, partner bundles out",
            endpoint_configuration={"types": "REGIONAL"},
            binary_media_types=["*/*"],
            api_key_source="HEADER",
            opts=child,
        )
        functions = {"ingest": args.ingest_function, "pull": args.pull_function}
        resources = self._resources(name)
        wiring: list[pulumi.Resource] = []
        for route in ROUTES:
            wiring += self._route(name, route, resources[route.path], functions[route.target])
        # A deployment is a snapshot of the routes and their integrations: a new one
        # whenever a route or a function behind one changes.
        deployment = aws.apigateway.Deployment(
            f"{name}-deployment",
            rest_api=self.rest_api.id,
            triggers={
                "routes": _routes_digest(),
                "targets": pulumi.Output.all(
                    args.ingest_function.invoke_arn, args.pull_function.invoke_arn
                ).apply(lambda arns: hashlib.sha256("\n".join(arns).encode()).hexdigest()),
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=wiring),
        )
        access_logs = aws.cloudwatch.LogGroup(
            f"{name}-access-logs",
            name=access_log_group_name(args.stack),
            retention_in_days=args.log_retention_days,
            opts=child,
        )
        stage_after: list[pulumi.Resource] = []
        if args.manage_account:
            stage_after.append(self._account_logging(name, args))
        self.stage = aws.apigateway.Stage(
            f"{name}-stage",
            rest_api=self.rest_api.id,
            deployment=deployment.id,
            stage_name=STAGE_NAME,
            access_log_settings={"destination_arn": access_logs.arn, "format": ACCESS_LOG_FORMAT},
            opts=pulumi.ResourceOptions(parent=self, depends_on=stage_after),
        )
        aws.apigateway.MethodSettings(
            f"{name}-method-settings",
            rest_api=self.rest_api.id,
            stage_name=self.stage.stage_name,
            method_path="*/*",
            settings={"metrics_enabled": True, "logging_level": "OFF", "data_trace_enabled": False},
            opts=child,
        )
        self._usage_plans(name, args)
        self.url = self.stage.invoke_url
        self.register_outputs({"url": self.url, "rest_api_id": self.rest_api.id})

    def _resources(self, name: str) -> dict[str, aws.apigateway.Resource]:
        """One API Gateway resource per path segment, keyed by full path."""
        resources: dict[str, aws.apigateway.Resource] = {}
        for route in ROUTES:
            path = ""
            for segment in route.path.strip("/").split("/"):
                parent_path, path = path, f"{path}/{segment}"
                if path in resources:
                    continue
                parent_id = (
                    resources[parent_path].id if parent_path else self.rest_api.root_resource_id
                )
                slug = path.strip("/").replace("/", "-").replace("{", "").replace("}", "")
                resources[path] = aws.apigateway.Resource(
                    f"{name}-path-{slug}",
                    rest_api=self.rest_api.id,
                    parent_id=parent_id,
                    path_part=segment,
                    opts=pulumi.ResourceOptions(parent=self),
                )
        return resources

    def _route(
        self,
        name: str,
        route: Route,
        resource: aws.apigateway.Resource,
        function: aws.lambda_.Function,
    ) -> list[pulumi.Resource]:
        slug = f"{route.method.lower()}-" + route.path.strip("/").replace("/", "-").replace(
            "{", ""
        ).replace("}", "")
        child = pulumi.ResourceOptions(parent=self)
        parameters = {
            f"method.request.path.{part[1:-1]}": True
            for part in route.path.split("/")
            if part.startswith("{")
        }
        method = aws.apigateway.Method(
            f"{name}-{slug}",
            rest_api=self.rest_api.id,
            resource_id=resource.id,
            http_method=route.method,
            authorization="NONE",
            api_key_required=True,
            request_parameters=parameters or None,
            opts=child,
        )
        integration = aws.apigateway.Integration(
            f"{name}-{slug}-integration",
            rest_api=self.rest_api.id,
            resource_id=resource.id,
            http_method=method.http_method,
            type="AWS_PROXY",
            integration_http_method="POST",
            uri=function.invoke_arn,
            opts=child,
        )
        # This route, and only this route, may invoke the function.
        permission = aws.lambda_.Permission(
            f"{name}-{slug}-invoke",
            action="lambda:InvokeFunction",
            function=function.name,
            principal="apigateway.amazonaws.com",
            source_arn=self.rest_api.execution_arn.apply(
                lambda arn: f"{arn}/*/{route.method}{route.path}"
            ),
            opts=child,
        )
        return [method, integration, permission]

    def _account_logging(self, name: str, args: IngestApiArgs) -> aws.apigateway.Account:
        logs = f"arn:{args.partition}:logs:{args.region}:{args.account_id}:log-group:"
        role = aws.iam.Role(
            f"{name}-logging-role",
            assume_role_policy=service_trust_policy("apigateway.amazonaws.com"),
            opts=pulumi.ResourceOptions(parent=self),
        )
        policy = aws.iam.RolePolicy(
            f"{name}-logging-policy",
            role=role.id,
            policy=policy_document(
                [
                    # IAM exception: every stack's access-log group (and its streams),
                    # not only this one's — the role is the account's, shared by every
                    # stack's API in this region (module docstring).
                    allow(
                        ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                        f"{logs}{ACCESS_LOG_GROUP_PREFIX}*",
                        sid="WriteEveryStacksAccessLogs",
                    ),
                    # Listing log groups is an account-wide read of names only; API
                    # Gateway checks the destination group with it.
                    allow(["logs:DescribeLogGroups"], f"{logs}*", sid="FindLogGroup"),
                ]
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return aws.apigateway.Account(
            f"{name}-account",
            cloudwatch_role_arn=role.arn,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )

    def _usage_plans(self, name: str, args: IngestApiArgs) -> None:
        plans = [
            (
                f"client-{c.id}",
                args.api_keys.clients[c.id],
                c.rate_limit,
                c.burst_limit,
                c.daily_quota,
            )
            for c in args.clients
        ] + [
            (
                f"partner-{p.id}",
                args.api_keys.partners[p.id],
                p.pull_rate_limit,
                p.pull_burst_limit,
                p.pull_daily_quota,
            )
            for p in args.partners
        ]
        for who, key, rate, burst, quota in plans:
            plan = aws.apigateway.UsagePlan(
                f"{name}-plan-{who}",
                description=f"Ryuzen Telemetry: {who}",
                api_stages=[{"api_id": self.rest_api.id, "stage": self.stage.stage_name}],
                throttle_settings={"rate_limit": rate, "burst_limit": burst},
                quota_settings={"limit": quota, "period": "DAY"} if quota else None,
                opts=pulumi.ResourceOptions(parent=self),
            )
            aws.apigateway.UsagePlanKey(
                f"{name}-plan-{who}-key",
                key_id=key.id,
                key_type="API_KEY",
                usage_plan_id=plan.id,
                opts=pulumi.ResourceOptions(parent=self),
            )


def access_log_group_name(stack: str) -> str:
    """The name of ``stack``'s access-log group, under the prefix the account role writes."""
    return f"{ACCESS_LOG_GROUP_PREFIX}{stack}"


def _routes_digest() -> str:
    return hashlib.sha256(
        json.dumps([route.__dict__ for route in ROUTES], sort_keys=True).encode()
    ).hexdigest()
