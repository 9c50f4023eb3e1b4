"""Running the whole program under ``pulumi.runtime.Mocks`` and recording what it declares.

``run_program`` sets fresh mocks (and a fresh root stack) for every run, feeds the stack
file's config the way the engine does (strings; objects and numbers JSON-encoded), runs
``infra.program.main`` and waits for every registration. The mocks fake the computed
outputs the program depends on (names, ARNs, URLs) and record each resource's inputs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml

ACCOUNT = "123456789012"
REGION = "eu-west-1"
PROJECT = "ryuzen-telemetry"
REPO_ROOT = Path(__file__).resolve().parents[2]
PUBLIC_KEY_PEM = "-----BEGIN PUBLIC KEY-----\nMOCK\n-----END PUBLIC KEY-----\n"


@dataclass
class Registered:
    """One resource the program declared: its type token, logical name, URN and inputs."""

    typ: str
    name: str
    urn: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]


def physical_name(name: str) -> str:
    return f"{name}-{hashlib.sha256(name.encode()).hexdigest()[:7]}"


class RecordingMocks(pulumi.runtime.Mocks):
    """Mocks that fake computed outputs by resource type and remember every resource."""

    def __init__(self) -> None:
        self.created: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = []
        self.calls: list[str] = []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = dict(args.inputs)
        physical = physical_name(args.name)
        region_arn = f"{REGION}:{ACCOUNT}"
        fakes: dict[str, Any] = {}
        resource_id = physical
        typ = args.typ
        if typ == "aws:s3/bucket:Bucket":
            fakes = {"bucket": physical, "arn": f"arn:aws:s3:::{physical}"}
        elif typ == "aws:sqs/queue:Queue":
            url = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{physical}"
            fakes = {"name": physical, "arn": f"arn:aws:sqs:{region_arn}:{physical}", "url": url}
            resource_id = url
        elif typ == "aws:iam/role:Role":
            fakes = {"name": physical, "arn": f"arn:aws:iam::{ACCOUNT}:role/{physical}"}
        elif typ == "aws:lambda/function:Function":
            arn = f"arn:aws:lambda:{region_arn}:function:{physical}"
            fakes = {
                "name": physical,
                "arn": arn,
                "invokeArn": (
                    f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{arn}/invocations"
                ),
            }
        elif typ == "aws:kms/key:Key":
            key_id = hashlib.md5(physical.encode()).hexdigest()  # a fake id
            fakes = {"keyId": key_id, "arn": f"arn:aws:kms:{region_arn}:key/{key_id}"}
            resource_id = key_id
        elif typ == "aws:dynamodb/table:Table":
            fakes = {"name": physical, "arn": f"arn:aws:dynamodb:{region_arn}:table/{physical}"}
        elif typ == "aws:cloudwatch/logGroup:LogGroup":
            group = inputs.get("name") or physical
            fakes = {"name": group, "arn": f"arn:aws:logs:{region_arn}:log-group:{group}"}
        elif typ == "aws:apigateway/restApi:RestApi":
            resource_id = physical[-10:]
            fakes = {
                "name": physical,
                "rootResourceId": "root123456",
                "executionArn": f"arn:aws:execute-api:{region_arn}:{resource_id}",
            }
        elif typ == "aws:apigateway/stage:Stage":
            fakes = {
                "invokeUrl": f"https://api123.execute-api.{REGION}.amazonaws.com/{inputs.get('stageName')}"
            }
        elif typ == "aws:apigateway/apiKey:ApiKey":
            resource_id = hashlib.sha256(args.name.encode()).hexdigest()[:10]
        elif typ == "aws:ecr/repository:Repository":
            fakes = {
                "name": physical,
                "arn": f"arn:aws:ecr:{region_arn}:repository/{physical}",
                "registryId": ACCOUNT,
                "repositoryUrl": f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{physical}",
            }
        elif typ == "aws:ecs/cluster:Cluster":
            fakes = {"name": physical, "arn": f"arn:aws:ecs:{region_arn}:cluster/{physical}"}
        elif typ == "aws:ecs/taskDefinition:TaskDefinition":
            base = f"arn:aws:ecs:{region_arn}:task-definition/{inputs.get('family')}"
            fakes = {"arn": f"{base}:1", "arnWithoutRevision": base, "revision": 1}
        elif typ == "docker-build:index:Image":
            fakes = {
                "ref": f"{inputs['tags'][0]}@sha256:{'0' * 64}",
                "digest": f"sha256:{'0' * 64}",
            }
        elif typ in ("aws:cloudwatch/eventBus:EventBus", "aws:cloudwatch/eventRule:EventRule"):
            kind = "event-bus" if typ.endswith("EventBus") else "rule"
            fakes = {"name": physical, "arn": f"arn:aws:events:{region_arn}:{kind}/{physical}"}
        elif typ == "aws:sns/topic:Topic":
            fakes = {"name": physical, "arn": f"arn:aws:sns:{region_arn}:{physical}"}
        elif typ == "aws:scheduler/schedule:Schedule":
            fakes = {"name": physical, "arn": f"arn:aws:scheduler:{region_arn}:schedule/{physical}"}
        elif typ in ("aws:scheduler/scheduleGroup:ScheduleGroup", "aws:athena/workgroup:Workgroup"):
            fakes = {"name": physical}
        elif args.custom:
            fakes = {"arn": f"arn:aws:mock:{region_arn}:{physical}"}
        outputs = {**inputs, **{k: v for k, v in fakes.items() if k not in inputs}}
        self.created.append((typ, args.name, inputs, outputs))
        return resource_id, outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[Any]]:
        self.calls.append(args.token)
        results: dict[str, dict[str, Any]] = {
            "aws:index/getCallerIdentity:getCallerIdentity": {
                "accountId": ACCOUNT,
                "arn": f"arn:aws:iam::{ACCOUNT}:user/deployer",
                "userId": "AIDAMOCK",
                "id": ACCOUNT,
            },
            "aws:index/getRegion:getRegion": {"region": REGION, "name": REGION, "id": REGION},
            "aws:index/getPartition:getPartition": {
                "partition": "aws",
                "dnsSuffix": "amazonaws.com",
                "id": "aws",
            },
            "aws:index/getAvailabilityZones:getAvailabilityZones": {
                "names": [f"{REGION}a", f"{REGION}b", f"{REGION}c"],
                "zoneIds": ["euw1-az1", "euw1-az2", "euw1-az3"],
                "id": REGION,
            },
            "aws:kms/getPublicKey:getPublicKey": {"publicKeyPem": PUBLIC_KEY_PEM},
            "aws:ecr/getAuthorizationToken:getAuthorizationToken": {
                "userName": "AWS",
                "password": "mock-password",
                "proxyEndpoint": f"https://{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com",
            },
        }
        return results.get(args.token, {}), []


@dataclass
class ProgramRun:
    """What one run of the program declared, and its resolved stack outputs."""

    stack: str
    resources: list[Registered]
    outputs: dict[str, Any] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    def of_type(self, typ: str) -> list[Registered]:
        """Every resource of one type token (``aws:s3/bucket:Bucket``)."""
        return [r for r in self.resources if r.typ == typ]

    def named(self, name: str) -> Registered:
        """The one resource with this logical name."""
        found = [r for r in self.resources if r.name == name]
        assert len(found) == 1, f"{len(found)} resources named {name}"
        return found[0]

    def names(self) -> set[str]:
        """Every logical name declared."""
        return {r.name for r in self.resources}

    def policies(self) -> Iterator[tuple[Registered, dict[str, Any]]]:
        """Every inline role policy, parsed."""
        for resource in self.of_type("aws:iam/rolePolicy:RolePolicy"):
            yield resource, json.loads(resource.inputs["policy"])


def stack_file_config(path: Path) -> dict[str, Any]:
    """The ``config:`` mapping of a ``Pulumi.<stack>.yaml``."""
    return dict(yaml.safe_load(path.read_text(encoding="utf-8"))["config"])


def project_defaults() -> dict[str, Any]:
    """The ``config:`` defaults ``Pulumi.yaml`` declares (the engine applies them)."""
    project = yaml.safe_load((REPO_ROOT / "Pulumi.yaml").read_text(encoding="utf-8"))
    return {
        key if ":" in key else f"{PROJECT}:{key}": spec["default"]
        for key, spec in (project.get("config") or {}).items()
        if isinstance(spec, dict) and "default" in spec
    }


def engine_config(values: dict[str, Any]) -> dict[str, str]:
    """Config as the engine hands it to a program: strings, the rest JSON-encoded."""
    merged = {**project_defaults(), **values}
    return {
        key: value if isinstance(value, str) else json.dumps(value) for key, value in merged.items()
    }


def run_program(
    values: dict[str, Any], *, stack: str, dist: Path, mocks: RecordingMocks | None = None
) -> ProgramRun:
    """Run ``infra.program.main`` under fresh mocks with ``values`` as the stack config.

    Pass ``mocks`` to look at what was registered when the program raises.
    """
    from infra import program  # imported here: after the mocks' module has loaded

    mocks = mocks or RecordingMocks()
    monitor = pulumi.runtime.mocks.MockMonitor(mocks)
    pulumi.runtime.settings.reset_options(project=PROJECT, stack=stack, preview=False)
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    pulumi.runtime.set_all_config(engine_config(values))
    resolved: dict[str, Any] = {}

    @pulumi.runtime.test
    def body() -> pulumi.Output[None]:
        outputs = program.main(dist=dist)
        return pulumi.Output.from_input(outputs).apply(resolved.update)

    body()
    urns = {
        (
            registration.urn.rsplit("::", 1)[-1],
            registration.urn.split("::")[2].split("$")[-1],
        ): registration.urn
        for registration in monitor.get_registered_resources().values()
    }
    resources = [
        Registered(typ, name, urns.get((name, typ), ""), inputs, outputs)
        for typ, name, inputs, outputs in mocks.created
    ]
    return ProgramRun(stack, resources, resolved, mocks.calls)
