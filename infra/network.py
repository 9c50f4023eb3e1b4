"""Network: the small VPC the monthly bundle task runs in.

Fargate needs subnets; nothing in the stack accepts connections, so the task gets two
public subnets (two zones: a zone outage delays a bundle, it does not block it) and a
security group with no inbound rule and HTTPS as its only way out. S3 and DynamoDB — all
the month's data — go through gateway endpoints, inside AWS's network and free of
charge; ECR, CloudWatch Logs, KMS and EventBridge go out over HTTPS with the task's public
IP (cheaper than a NAT gateway or five interface endpoints for a task that runs once a
month per partner).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

CIDR = "10.64.0.0/24"
SUBNET_CIDRS = ("10.64.0.0/25", "10.64.0.128/25")


@dataclass
class NetworkArgs:
    """Where to place the subnets."""

    availability_zones: Sequence[str]
    region: str


class Network(pulumi.ComponentResource):
    """A VPC with two public subnets, gateway endpoints and an egress-only security group."""

    subnets: list[aws.ec2.Subnet]
    security_group: aws.ec2.SecurityGroup

    def __init__(
        self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("ryuzen:index:Network", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=CIDR,
            enable_dns_support=True,
            enable_dns_hostnames=True,
            tags={"Name": name},
            opts=child,
        )
        gateway = aws.ec2.InternetGateway(f"{name}-igw", vpc_id=vpc.id, opts=child)
        routes = aws.ec2.RouteTable(
            f"{name}-routes",
            vpc_id=vpc.id,
            routes=[{"cidr_block": "0.0.0.0/0", "gateway_id": gateway.id}],
            opts=child,
        )
        self.subnets = []
        for index, (zone, cidr) in enumerate(
            zip(args.availability_zones, SUBNET_CIDRS, strict=False)
        ):
            subnet = aws.ec2.Subnet(
                f"{name}-subnet-{index}",
                vpc_id=vpc.id,
                cidr_block=cidr,
                availability_zone=zone,
                # The task asks for its public IP itself (assignPublicIp); nothing else
                # launched here gets one.
                map_public_ip_on_launch=False,
                opts=child,
            )
            aws.ec2.RouteTableAssociation(
                f"{name}-subnet-{index}-routes",
                subnet_id=subnet.id,
                route_table_id=routes.id,
                opts=child,
            )
            self.subnets.append(subnet)
        for service in ("s3", "dynamodb"):
            aws.ec2.VpcEndpoint(
                f"{name}-{service}-endpoint",
                vpc_id=vpc.id,
                service_name=f"com.amazonaws.{args.region}.{service}",
                vpc_endpoint_type="Gateway",
                route_table_ids=[routes.id],
                opts=child,
            )
        self.security_group = aws.ec2.SecurityGroup(
            f"{name}-task",
            vpc_id=vpc.id,
            description="Ryuzen bundle task: no inbound, HTTPS out",
            egress=[
                {
                    "protocol": "tcp",
                    "from_port": 443,
                    "to_port": 443,
                    "cidr_blocks": ["0.0.0.0/0"],
                    "description": "AWS APIs over HTTPS",
                }
            ],
            opts=child,
        )
        self.register_outputs(
            {
                "subnet_ids": [s.id for s in self.subnets],
                "security_group_id": self.security_group.id,
            }
        )
