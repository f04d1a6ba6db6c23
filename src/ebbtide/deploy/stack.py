"""The CloudFormation template for what a config names, and the config the stack's outputs give.

`template(settings)` is pure: the same config always gives the same template, so `ebbtide aws plan`
can be reviewed and diffed. It creates only what the config uses: the SQS queue and its DLQ, the
media bucket, one launch template per EC2/ASG pool (and the group for ASG pools), an ECS cluster
with a task definition per ECS pool (GPU ones on an EC2 capacity provider), the controller's own
ECS service, log groups, and IAM roles whose statements come from `ebbtide.deploy.iam`.
`static` and `local` pools are the user's own machines: nothing is created for them.

Foreign pools (`workers: foreign`) scale the user's existing resources (their service, group or
launch template): nothing is created for them; the scaler's policy gets statements scoped to the
names in the pool's options, plus read access to an `sqs://` depth source. A scaler-only config
(`services.scaler_only`: every pool foreign) gets only the scaler's log group and policy, and with
`aws.controller: ecs` the controller's service (cluster, roles, security group) and a private
bucket holding the config it reads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from ebbtide.config.sections import PoolConfig
from ebbtide.config.settings import Settings
from ebbtide.deploy import cloudfront, iam
from ebbtide.deploy.cfn import Json, arn, att, logical_id, ref, sub, tags
from ebbtide.deploy.userdata import boot_script, ecs_gpu_script
from ebbtide.errors import ConfigError
from ebbtide.fleet.providers.aws import TAG_POOL, PoolOptions, worker_command
from ebbtide.services import scaler_only

CLOUD_PROVIDERS = ("ec2", "asg", "ecs-service", "ecs-task")
CONFIG_KEY = "_ebbtide/ebbtide.yaml"  # where deploy puts the config the workers pull
TAG_STACK = "ebbtide:stack"
LONG_POLL = 20
DEBIAN_AMI = "/aws/service/debian/release/12/latest/amd64"
ECS_GPU_AMI = "/aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended/image_id"
DEFAULT_INSTANCE = "c6i.xlarge"  # seed 002's spot workers
DEFAULT_GPU_INSTANCE = "g4dn.xlarge"  # seed 001's T4 workers
MEDIA_PREFIX = "media"

# checkov findings that stay, with why; written into each resource's Metadata so the reviewer of
# `ebbtide aws plan` sees them next to the resource (docs/deploy.md repeats them).
ACCEPTED: dict[str, dict[str, str]] = {
    "AWS::SQS::Queue": {
        "CKV_AWS_27": "encrypted at rest with SQS-managed keys (SqsManagedSseEnabled); a customer KMS key "
        "costs $1/month idle and every producer and consumer would need kms rights",
    },
    "AWS::S3::Bucket": {
        "CKV_AWS_18": "access logs need a second bucket and cost per request; media is reached through "
        "presigned URLs that expire and CloudTrail data events can be turned on per account",
        "CKV_AWS_21": "outputs are regenerated from the kept source; versioning would keep every replaced "
        "HLS ladder and double storage; deletion is by the owner's request only",
    },
    "AWS::Logs::LogGroup": {
        "CKV_AWS_158": "CloudWatch Logs encrypts every log group at rest; a customer KMS key costs "
        "$1/month idle; secrets never reach the logs",
    },
}


@dataclass(frozen=True)
class DeployOptions:
    """The pool options only the stack reads, typed once."""

    instance_type: str
    gpu: int
    cpu: int
    memory: int

    @classmethod
    def of(cls, pool: PoolConfig) -> DeployOptions:
        opts = PoolOptions(pool)

        def number(name: str, default: int) -> int:
            value = pool.options.get(name, default)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"{opts.key(name)} must be a whole number ≥ 0, got {value!r}")
            return value

        gpu = number("gpu", 0)
        default_type = DEFAULT_GPU_INSTANCE if gpu else DEFAULT_INSTANCE
        return cls(
            instance_type=opts.optional("instance_type") or default_type,
            gpu=gpu,
            cpu=number("cpu", 4096 if gpu else 2048),
            memory=number("memory", 15360 if gpu else 4096),
        )


def queue_name(settings: Settings) -> str:
    url = urlparse(settings.queue.url)
    if url.scheme == "sqs" and url.netloc:
        return url.netloc
    return f"{settings.aws.stack_name}-{settings.queue.name}"


# Every bucket the stack makes: no public access, owner-enforced, encrypted, unversioned.
PRIVATE_BUCKET: Json = {
    "PublicAccessBlockConfiguration": {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    },
    "OwnershipControls": {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]},
    "BucketEncryption": {
        "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
    },
    "VersioningConfiguration": {"Status": "Suspended"},
}


def tls_only(bucket: str) -> Json:
    """Deny any request to the bucket (logical id) that is not over TLS."""
    return {
        "Sid": "TlsOnly",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [att(bucket, "Arn"), sub(f"${{{bucket}.Arn}}/*")],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def bucket_and_prefix(settings: Settings) -> tuple[str | None, str]:
    """The config's bucket (None: CloudFormation names one) and key prefix."""
    url = urlparse(settings.store.url)
    if url.scheme == "s3" and url.netloc:
        return url.netloc, url.path.strip("/")
    return None, MEDIA_PREFIX


def cloud_pools(settings: Settings) -> list[PoolConfig]:
    """Cloud pools of ebbtide's own workers: the stack creates their resources."""
    return [p for p in settings.fleet.pools if p.provider in CLOUD_PROVIDERS and p.workers == "ebbtide"]


def foreign_pools(settings: Settings) -> list[PoolConfig]:
    """Cloud pools of the user's own workers: the stack only grants the scaler its calls on them."""
    return [p for p in settings.fleet.pools if p.provider in CLOUD_PROVIDERS and p.workers == "foreign"]


def depth_queue(settings: Settings) -> str | None:
    """The SQS queue named by `fleet.depth_source`, if it is one."""
    src = settings.fleet.depth_source
    url = urlparse(src) if src else None
    return url.netloc if url and url.scheme == "sqs" and url.netloc else None


def pool_id(pool: PoolConfig) -> str:
    return "Pool" + logical_id(pool.name)


def resource_name(settings: Settings, pool: PoolConfig) -> str:
    return f"{settings.aws.stack_name}-{pool.name}"


class _Builder:
    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.stack = settings.aws.stack_name
        self.pools = cloud_pools(settings)
        self.foreign = foreign_pools(settings)
        self.scaler_only = scaler_only(settings)
        # where the controller's task reads its config: the media bucket, or (scaler only) its own
        self.config_bucket = "ConfigBucket" if self.scaler_only else "MediaBucket"
        self.resources: dict[str, Json] = {}
        self.outputs: dict[str, Json] = {}
        self.params: dict[str, Json] = {}
        self.bucket_name, self.prefix = bucket_and_prefix(settings)
        self.instance_pools = [p for p in self.pools if p.provider in ("ec2", "asg")]
        self.ecs_pools = [p for p in self.pools if p.provider in ("ecs-service", "ecs-task")]
        self.gpu_pools = [p for p in self.ecs_pools if DeployOptions.of(p).gpu]
        self.controller = settings.aws.controller == "ecs"
        self.needs_cluster = bool(self.ecs_pools) or self.controller

    def add(self, name: str, type_: str, props: Json, **extra: Any) -> None:
        self.resources[name] = {"Type": type_, "Properties": props, **extra}
        if type_ in ACCEPTED:
            skips = [{"id": k, "comment": v} for k, v in ACCEPTED[type_].items()]
            self.resources[name]["Metadata"] = {"checkov": {"skip": skips}}

    def output(self, name: str, value: Any, description: str) -> None:
        self.outputs[name] = {"Description": description, "Value": value}

    # -------------------------------------------------------------------------------------------
    def build(self) -> Json:
        if self.scaler_only:
            return self.build_scaler_only()
        self.parameters()
        self.network()
        self.queue()
        self.bucket()
        if cloudfront.wanted(self.s):
            cloudfront.add(self, self.s)
        self.logs()
        self.data_policy()
        if self.instance_pools:
            self.instance_role()
        if self.needs_cluster:
            self.cluster()
        for pool in self.pools:
            self.pool(pool)
        self.controller_policy()
        if self.controller:
            self.controller_service()
        return {
            "AWSTemplateFormatVersion": "2010-09-09",
            "Description": f"ebbtide {self.stack}: queue, media bucket, worker pools and their IAM "
            "(generated by `ebbtide aws plan`)",
            "Parameters": self.params,
            "Resources": self.resources,
            "Outputs": self.outputs,
        }

    def build_scaler_only(self) -> Json:
        """The user's queue and workers are theirs: only what the scaler itself needs."""
        self.logs()
        self.controller_policy()
        if self.controller:
            host = urlparse(self.s.fleet.depth_source or "").hostname or ""
            if host in ("127.0.0.1", "localhost", "::1"):
                raise ConfigError(
                    f"fleet.depth_source is on {host}: the controller's Fargate task cannot reach it",
                    hint="set aws.controller: none and run `ebbtide scaler` on that machine",
                )
            self.parameters()
            self.network()
            self.config_only_bucket()
            self.cluster()
            self.controller_service()
        return {
            "AWSTemplateFormatVersion": "2010-09-09",
            "Description": f"ebbtide {self.stack}: the scaler of the user's own workers and queue "
            "(scaler only; generated by `ebbtide aws plan`)",
            **({"Parameters": self.params} if self.params else {}),
            "Resources": self.resources,
            "Outputs": self.outputs,
        }

    def parameters(self) -> None:
        aws = self.s.aws
        vpc: Json = {"Type": "AWS::EC2::VPC::Id", "Description": "VPC of the workers"}
        subnets: Json = {
            "Type": "List<AWS::EC2::Subnet::Id>",
            "Description": "subnets of the workers and tasks (one per AZ you want)",
        }
        if aws.vpc:
            vpc["Default"] = aws.vpc
        if aws.subnets:
            subnets["Default"] = ",".join(aws.subnets)
        self.params.update(VpcId=vpc, SubnetIds=subnets)
        if self.instance_pools:
            if aws.ami:
                self.params["WorkerAmi"] = {
                    "Type": "AWS::EC2::Image::Id",
                    "Default": aws.ami,
                    "Description": "AMI of the EC2/ASG workers",
                }
            else:
                self.params["WorkerAmi"] = {
                    "Type": "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>",
                    "Default": DEBIAN_AMI,
                    "Description": "AMI of the EC2/ASG workers (Debian 12)",
                }
        if self.gpu_pools:
            self.params["GpuAmi"] = {
                "Type": "AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>",
                "Default": ECS_GPU_AMI,
                "Description": "ECS-optimized GPU AMI of the GPU capacity",
            }

    def network(self) -> None:
        who = "controller" if self.scaler_only else "workers"
        egress = self.egress()
        self.add(
            "WorkerSecurityGroup",
            "AWS::EC2::SecurityGroup",
            {
                "GroupDescription": f"ebbtide {self.stack} {who}: no inbound, outbound HTTPS",
                "VpcId": ref("VpcId"),
                "SecurityGroupEgress": egress,
                "Tags": tags(**{TAG_STACK: self.stack}),
            },
        )
        self.output("SecurityGroup", ref("WorkerSecurityGroup"), f"security group of the {who}")
        self.output("Subnets", {"Fn::Join": [",", ref("SubnetIds")]}, f"subnets of the {who}")

    def egress(self) -> list[Json]:
        https: Json = {
            "IpProtocol": "tcp",
            "FromPort": 443,
            "ToPort": 443,
            "CidrIp": "0.0.0.0/0",
            "Description": "AWS APIs, S3, SQS, container registries, package mirrors",
        }
        if self.scaler_only:
            rules = [https]
            src = urlparse(self.s.fleet.depth_source or "")
            if src.scheme == "bullmq":
                port = src.port or 6379
                rules.append({"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "CidrIp": "0.0.0.0/0",
                              "Description": "the depth source's Redis (BullMQ)"})
            return rules
        return [
            https,
            {
                "IpProtocol": "tcp",
                "FromPort": 80,
                "ToPort": 80,
                "CidrIp": "0.0.0.0/0",
                "Description": "Debian package mirrors at first boot",
            },
            {
                "IpProtocol": "tcp",
                "FromPort": 5432,
                "ToPort": 5432,
                "CidrIp": "0.0.0.0/0",
                "Description": "the catalog's PostgreSQL",
            },
        ]

    def queue(self) -> None:
        name = queue_name(self.s)
        visibility = min(43200, math.ceil(self.s.queue.lease))  # the lease workers take (queue.lease)
        common = {"SqsManagedSseEnabled": True, "MessageRetentionPeriod": 1209600}
        self.add("DeadLetterQueue", "AWS::SQS::Queue", {"QueueName": f"{name}-dlq", **common})
        self.add(
            "JobQueue",
            "AWS::SQS::Queue",
            {
                "QueueName": name,
                "VisibilityTimeout": visibility,
                "ReceiveMessageWaitTimeSeconds": LONG_POLL,
                "RedrivePolicy": {
                    "deadLetterTargetArn": att("DeadLetterQueue", "Arn"),
                    "maxReceiveCount": self.s.queue.max_receives,
                },
                **common,
            },
        )
        self.output("QueueName", att("JobQueue", "QueueName"), "SQS job queue")
        self.output("QueueUrl", ref("JobQueue"), "SQS job queue URL")
        self.output("DeadLetterQueueUrl", ref("DeadLetterQueue"), "its dead-letter queue")

    def bucket(self) -> None:
        origins = [self.s.web.public_url.rstrip("/")] if self.s.web.public_url else ["*"]
        props: Json = {
            **PRIVATE_BUCKET,
            "CorsConfiguration": {
                "CorsRules": [
                    {
                        "Id": "players-and-uploads",
                        "AllowedMethods": ["GET", "HEAD", "PUT"],
                        "AllowedOrigins": origins,
                        "AllowedHeaders": ["*"],
                        "ExposedHeaders": ["ETag", "Content-Length", "Content-Range"],
                        "MaxAge": 3600,
                    }
                ]
            },
            "LifecycleConfiguration": {
                "Rules": [
                    {
                        "Id": "abort-stale-multipart-uploads",
                        "Status": "Enabled",
                        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
                    }
                ]
            },
            "Tags": tags(**{TAG_STACK: self.stack}),
        }
        if self.bucket_name:
            props["BucketName"] = self.bucket_name
        self.add("MediaBucket", "AWS::S3::Bucket", props)
        self.add(
            "MediaBucketPolicy",
            "AWS::S3::BucketPolicy",
            {
                "Bucket": ref("MediaBucket"),
                "PolicyDocument": iam.document([tls_only("MediaBucket")]),
            },
        )
        self.output("BucketName", ref("MediaBucket"), "media bucket")
        self.output("MediaPrefix", self.prefix or "-", "key prefix of the media in the bucket")
        self.output(
            "ConfigUrl",
            sub(f"s3://${{MediaBucket}}/{CONFIG_KEY}"),
            "where deploy puts the config the workers and the controller read",
        )

    def logs(self) -> None:
        days = self.s.aws.log_retention_days
        groups = [("ControllerLogs", "controller")]
        if not self.scaler_only:
            groups.insert(0, ("WorkerLogs", "workers"))
        for name, path in groups:
            self.add(
                name,
                "AWS::Logs::LogGroup",
                {
                    "LogGroupName": f"/ebbtide/{self.stack}/{path}",
                    "RetentionInDays": days,
                },
            )

    def config_only_bucket(self) -> None:
        """Scaler only, controller on ECS: a private bucket holding just the config it reads."""
        self.add(
            "ConfigBucket",
            "AWS::S3::Bucket",
            {
                **PRIVATE_BUCKET,
                "Tags": tags(**{TAG_STACK: self.stack}),
            },
        )
        self.resources["ConfigBucket"]["Metadata"] = {"checkov": {"skip": [
            {"id": "CKV_AWS_18", "comment": "holds one object, the deployed config, read by the controller's "
             "role only; access logs need a second bucket"},
            {"id": "CKV_AWS_21", "comment": "the config is rewritten by every `aws deploy` from the user's "
             "own file; older copies are not kept"},
        ]}}
        self.add(
            "ConfigBucketPolicy",
            "AWS::S3::BucketPolicy",
            {
                "Bucket": ref("ConfigBucket"),
                "PolicyDocument": iam.document([tls_only("ConfigBucket")]),
            },
        )
        self.output("ConfigBucketName", ref("ConfigBucket"), "bucket of the config the controller reads")
        self.output(
            "ConfigUrl",
            sub(f"s3://${{ConfigBucket}}/{CONFIG_KEY}"),
            "where deploy puts the controller's config",
        )

    def data_policy(self) -> None:
        queues = [att("JobQueue", "Arn"), att("DeadLetterQueue", "Arn")]
        self.add(
            "DataPolicy",
            "AWS::IAM::ManagedPolicy",
            {
                "Description": "ebbtide: use the job queue and the media bucket",
                "PolicyDocument": iam.document(
                    iam.data_statements(queues, ref("MediaBucket"), self.prefix, CONFIG_KEY)
                ),
            },
        )

    def instance_role(self) -> None:
        self.add(
            "WorkerInstanceRole",
            "AWS::IAM::Role",
            {
                "AssumeRolePolicyDocument": iam.assume("ec2.amazonaws.com"),
                "ManagedPolicyArns": [ref("DataPolicy")],
                "Tags": tags(**{TAG_STACK: self.stack}),
            },
        )
        self.add("WorkerInstanceProfile", "AWS::IAM::InstanceProfile", {"Roles": [ref("WorkerInstanceRole")]})
        self.output(
            "WorkerInstanceProfile", att("WorkerInstanceProfile", "Arn"), "instance profile of workers"
        )

    def cluster(self) -> None:
        providers = ["FARGATE", "FARGATE_SPOT"]
        images = [self.s.aws.controller_image]
        log_groups = [g for g in ("WorkerLogs", "ControllerLogs") if g in self.resources]
        if not self.scaler_only:
            images = [self.s.aws.image, self.s.aws.gpu_image, *images]
        self.add(
            "Cluster",
            "AWS::ECS::Cluster",
            {
                "ClusterName": self.stack,
                "ClusterSettings": [{"Name": "containerInsights", "Value": "enabled"}],
                "Tags": [{"Key": TAG_STACK, "Value": self.stack}],
            },
        )
        self.add(
            "ClusterCapacity",
            "AWS::ECS::ClusterCapacityProviderAssociations",
            {
                "Cluster": ref("Cluster"),
                "CapacityProviders": providers + [ref(f"{pool_id(p)}Capacity") for p in self.gpu_pools],
                "DefaultCapacityProviderStrategy": [{"CapacityProvider": "FARGATE", "Weight": 1}],
            },
        )
        self.add(
            "TaskExecutionRole",
            "AWS::IAM::Role",
            {
                "AssumeRolePolicyDocument": iam.assume("ecs-tasks.amazonaws.com"),
                "Policies": [
                    {
                        "PolicyName": "pull-and-log",
                        "PolicyDocument": iam.document(
                            iam.log_statements([att(g, "Arn") for g in log_groups])
                            + iam.ecr_statements(images)
                        ),
                    }
                ],
            },
        )
        if self.scaler_only:
            self.output("ClusterName", ref("Cluster"), "ECS cluster of the controller")
            return
        self.add(
            "WorkerTaskRole",
            "AWS::IAM::Role",
            {
                "AssumeRolePolicyDocument": iam.assume("ecs-tasks.amazonaws.com"),
                "ManagedPolicyArns": [ref("DataPolicy")],
                "Policies": [
                    {
                        "PolicyName": "task-protection",
                        "PolicyDocument": iam.document(iam.protection_statements(self.stack)),
                    }
                ],
            },
        )
        self.output("ClusterName", ref("Cluster"), "ECS cluster")
        if self.gpu_pools:
            self.add(
                "GpuInstanceRole",
                "AWS::IAM::Role",
                {
                    "AssumeRolePolicyDocument": iam.assume("ec2.amazonaws.com"),
                    "ManagedPolicyArns": [
                        sub(
                            "arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role"
                        )
                    ],
                },
            )
            self.add("GpuInstanceProfile", "AWS::IAM::InstanceProfile", {"Roles": [ref("GpuInstanceRole")]})

    # pools -------------------------------------------------------------------------------------
    def pool(self, pool: PoolConfig) -> None:
        if pool.provider in ("ec2", "asg"):
            self.instance_pool(pool)
        else:
            self.ecs_pool(pool)

    def launch_template(
        self,
        pool: PoolConfig,
        lid: str,
        name: str,
        ami: str,
        profile: str,
        user_data: Json,
        instance_type: str,
    ) -> None:
        self.add(
            lid,
            "AWS::EC2::LaunchTemplate",
            {
                "LaunchTemplateName": name,
                "LaunchTemplateData": {
                    "ImageId": ref(ami),
                    "InstanceType": instance_type,
                    "IamInstanceProfile": {"Arn": att(profile, "Arn")},
                    "SecurityGroupIds": [ref("WorkerSecurityGroup")],
                    "MetadataOptions": {
                        "HttpTokens": "required",
                        "HttpEndpoint": "enabled",
                        "HttpPutResponseHopLimit": 2,
                        "InstanceMetadataTags": "enabled",
                    },
                    "EbsOptimized": True,
                    "Monitoring": {"Enabled": False},
                    "BlockDeviceMappings": [
                        {
                            "DeviceName": "/dev/xvda",
                            "Ebs": {
                                "VolumeSize": 30,
                                "VolumeType": "gp3",
                                "Encrypted": True,
                                "DeleteOnTermination": True,
                            },
                        }
                    ],
                    "UserData": {"Fn::Base64": user_data},
                    "TagSpecifications": [
                        {
                            "ResourceType": "volume",
                            "Tags": tags(**{TAG_STACK: self.stack, TAG_POOL: pool.name}),
                        }
                    ],
                },
            },
        )

    def instance_pool(self, pool: PoolConfig) -> None:
        pid, name, opts = pool_id(pool), resource_name(self.s, pool), DeployOptions.of(pool)
        script = boot_script(pool.name, worker_command(pool), self.s.aws.install)
        self.launch_template(
            pool,
            f"{pid}Template",
            name,
            "WorkerAmi",
            "WorkerInstanceProfile",
            sub(script, ConfigUrl=sub(f"s3://${{MediaBucket}}/{CONFIG_KEY}")),
            opts.instance_type,
        )
        self.output(f"{pid}LaunchTemplate", name, f"launch template of pool {pool.name}")
        if pool.provider == "asg":
            self.add(
                f"{pid}Group",
                "AWS::AutoScaling::AutoScalingGroup",
                self.group_props(pool, name, f"{pid}Template", spot=pool.spot),
            )
            self.output(f"{pid}Group", ref(f"{pid}Group"), f"Auto Scaling group of pool {pool.name}")

    def group_props(self, pool: PoolConfig, name: str, template: str, spot: bool) -> Json:
        spec = {"LaunchTemplateId": ref(template), "Version": att(template, "LatestVersionNumber")}
        props: Json = {
            "AutoScalingGroupName": name,
            "MinSize": "0",
            "MaxSize": str(pool.max),
            "VPCZoneIdentifier": ref("SubnetIds"),
            # the controller turns protection off for idle instances it retires by name
            "NewInstancesProtectedFromScaleIn": True,
            "Tags": [
                {"Key": TAG_POOL, "Value": pool.name, "PropagateAtLaunch": True},
                {"Key": TAG_STACK, "Value": self.stack, "PropagateAtLaunch": True},
            ],
        }
        if spot:
            props["MixedInstancesPolicy"] = {
                "LaunchTemplate": {"LaunchTemplateSpecification": spec},
                "InstancesDistribution": {
                    "OnDemandBaseCapacity": 0,
                    "OnDemandPercentageAboveBaseCapacity": 0,
                    "SpotAllocationStrategy": "price-capacity-optimized",
                },
            }
        else:
            props["LaunchTemplate"] = spec
        return props

    def ecs_pool(self, pool: PoolConfig) -> None:
        pid, name, opts = pool_id(pool), resource_name(self.s, pool), DeployOptions.of(pool)
        once = pool.provider == "ecs-task"
        image = self.s.aws.gpu_image if opts.gpu else self.s.aws.image
        container: Json = {
            "Name": "worker",
            "Image": image,
            "Essential": True,
            "Command": worker_command(pool, once=once),
            "Environment": [
                {"Name": "EBBTIDE_CONFIG_URL", "Value": sub(f"s3://${{MediaBucket}}/{CONFIG_KEY}")},
                {"Name": "EBBTIDE_POOL", "Value": pool.name},
            ],
            "LogConfiguration": {
                "LogDriver": "awslogs",
                "Options": {
                    "awslogs-group": ref("WorkerLogs"),
                    "awslogs-region": ref("AWS::Region"),
                    "awslogs-stream-prefix": pool.name,
                },
            },
            "StopTimeout": 120,
        }
        task: Json = {
            "Family": name,
            "NetworkMode": "awsvpc",
            "Cpu": str(opts.cpu),
            "Memory": str(opts.memory),
            "ExecutionRoleArn": att("TaskExecutionRole", "Arn"),
            "TaskRoleArn": att("WorkerTaskRole", "Arn"),
            "ContainerDefinitions": [container],
        }
        if opts.gpu:
            task["RequiresCompatibilities"] = ["EC2"]
            container["ResourceRequirements"] = [{"Type": "GPU", "Value": str(opts.gpu)}]
            self.gpu_capacity(pool, pid, name, opts)
            strategy = [{"CapacityProvider": ref(f"{pid}Capacity"), "Weight": 1}]
        else:
            task["RequiresCompatibilities"] = ["FARGATE"]
            strategy = [{"CapacityProvider": "FARGATE_SPOT" if pool.spot else "FARGATE", "Weight": 1}]
        self.add(f"{pid}Task", "AWS::ECS::TaskDefinition", task)
        self.output(f"{pid}TaskDefinition", name, f"task definition family of pool {pool.name}")
        if pool.provider == "ecs-service":
            self.add(
                f"{pid}Service",
                "AWS::ECS::Service",
                {
                    "ServiceName": name,
                    "Cluster": ref("Cluster"),
                    "TaskDefinition": ref(f"{pid}Task"),
                    "DesiredCount": pool.min,
                    "CapacityProviderStrategy": strategy,
                    "NetworkConfiguration": self.awsvpc(),
                    "PropagateTags": "SERVICE",
                    "Tags": [{"Key": TAG_POOL, "Value": pool.name}],
                },
                DependsOn=["ClusterCapacity"],
            )
            self.output(f"{pid}Service", att(f"{pid}Service", "Name"), f"ECS service of pool {pool.name}")

    def awsvpc(self) -> Json:
        return {
            "AwsvpcConfiguration": {
                "Subnets": ref("SubnetIds"),
                "SecurityGroups": [ref("WorkerSecurityGroup")],
                "AssignPublicIp": "ENABLED",
            }
        }

    def gpu_capacity(self, pool: PoolConfig, pid: str, name: str, opts: DeployOptions) -> None:
        self.launch_template(
            pool,
            f"{pid}Template",
            f"{name}-gpu",
            "GpuAmi",
            "GpuInstanceProfile",
            sub(ecs_gpu_script(), Cluster=self.stack),
            opts.instance_type,
        )
        self.add(
            f"{pid}Group",
            "AWS::AutoScaling::AutoScalingGroup",
            self.group_props(pool, f"{name}-gpu", f"{pid}Template", spot=pool.spot),
        )
        self.add(
            f"{pid}Capacity",
            "AWS::ECS::CapacityProvider",
            {
                "AutoScalingGroupProvider": {
                    "AutoScalingGroupArn": ref(f"{pid}Group"),
                    "ManagedScaling": {
                        "Status": "ENABLED",
                        "TargetCapacity": 100,
                        "MinimumScalingStepSize": 1,
                        "MaximumScalingStepSize": max(1, pool.max),
                    },
                    "ManagedTerminationProtection": "ENABLED",
                },
            },
        )

    # the controller ----------------------------------------------------------------------------
    def controller_policy(self) -> None:
        stmts: list[Json] = []
        for pool in self.pools:
            stmts += iam.provider_statements(pool.provider, self.scope(pool), logical_id(pool.name))
        queue = depth_queue(self.s)
        for pool in self.foreign:
            stmts += iam.foreign_statements(
                pool.provider, self.foreign_scope(pool), logical_id(pool.name), sqs_probe=queue is not None
            )
        if self.foreign and queue:
            stmts += iam.depth_statements(arn("sqs", queue))
        if not stmts:
            return
        self.add(
            "ControllerPolicy",
            "AWS::IAM::ManagedPolicy",
            {
                "Description": "ebbtide: the scaler's calls on its pools (attach to your edge box's role "
                "when the controller runs there)",
                "PolicyDocument": iam.document(stmts),
            },
        )
        self.output("ControllerPolicy", ref("ControllerPolicy"), "IAM policy of the scaler")

    def scope(self, pool: PoolConfig) -> iam.Scope:
        pid, name = pool_id(pool), resource_name(self.s, pool)
        if pool.provider in ("ec2", "asg"):
            return iam.Scope(
                pool=pool.name,
                launch_template=_template_arn(ref(f"{pid}Template")),
                group=name,
                pass_roles=(att("WorkerInstanceRole", "Arn"),),
                passed_to="ec2.amazonaws.com",
            )
        return iam.Scope(
            pool=pool.name,
            cluster=self.stack,
            service=name,
            family=name,
            pass_roles=(att("WorkerTaskRole", "Arn"), att("TaskExecutionRole", "Arn")),
            passed_to="ecs-tasks.amazonaws.com",
        )

    def foreign_scope(self, pool: PoolConfig) -> iam.Scope:
        """The user's own resources, named in the pool's options (what the provider calls)."""
        opts = PoolOptions(pool)
        if pool.provider == "ec2":
            template = opts.required("launch_template", hint="name or lt-… id of your launch template")
            role = opts.optional("instance_role")  # the role of the template's instance profile
            return iam.Scope(
                pool=pool.name,
                # IAM names launch templates by id only: a template given by name is any template
                launch_template=_template_arn(template if template.startswith("lt-") else "*"),
                pass_roles=(arn("iam", f"role/{role or '*'}", region=False),),
                passed_to="ec2.amazonaws.com",
            )
        if pool.provider == "asg":
            return iam.Scope(pool=pool.name, group=opts.required("asg_name", hint="your Auto Scaling group"))
        if pool.provider == "ecs-service":
            return iam.Scope(
                pool=pool.name,
                cluster=opts.required("cluster", hint="the ECS cluster of your worker service"),
                service=opts.required("service", hint="your ECS worker service"),
            )
        raise ConfigError(
            f"fleet.pools[{pool.name}]: provider {pool.provider} cannot hold foreign workers",
            hint="foreign pools are static, ec2, asg or ecs-service",
        )

    def controller_service(self) -> None:
        managed = [ref(p) for p in ("DataPolicy", "ControllerPolicy") if p in self.resources]
        role: Json = {
            "AssumeRolePolicyDocument": iam.assume("ecs-tasks.amazonaws.com"),
            "ManagedPolicyArns": managed,
        }
        if self.scaler_only:
            config = sub(f"arn:${{AWS::Partition}}:s3:::${{{self.config_bucket}}}/{CONFIG_KEY}")
            read: Json = {
                "Sid": "ReadConfig",
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": config,
            }
            role["Policies"] = [{"PolicyName": "read-config", "PolicyDocument": iam.document([read])}]
        self.add("ControllerRole", "AWS::IAM::Role", role)
        self.add(
            "ControllerTask",
            "AWS::ECS::TaskDefinition",
            {
                "Family": f"{self.stack}-controller",
                "NetworkMode": "awsvpc",
                "RequiresCompatibilities": ["FARGATE"],
                "Cpu": "256",
                "Memory": "512",
                "ExecutionRoleArn": att("TaskExecutionRole", "Arn"),
                "TaskRoleArn": att("ControllerRole", "Arn"),
                "ContainerDefinitions": [
                    {
                        "Name": "controller",
                        "Image": self.s.aws.controller_image,
                        "Essential": True,
                        "Command": ["ebbtide", "scaler"],
                        "Environment": [
                            {
                                "Name": "EBBTIDE_CONFIG_URL",
                                "Value": sub(f"s3://${{{self.config_bucket}}}/{CONFIG_KEY}"),
                            }
                        ],
                        "LogConfiguration": {
                            "LogDriver": "awslogs",
                            "Options": {
                                "awslogs-group": ref("ControllerLogs"),
                                "awslogs-region": ref("AWS::Region"),
                                "awslogs-stream-prefix": "scaler",
                            },
                        },
                    }
                ],
            },
        )
        self.add(
            "ControllerService",
            "AWS::ECS::Service",
            {
                "ServiceName": f"{self.stack}-controller",
                "Cluster": ref("Cluster"),
                "TaskDefinition": ref("ControllerTask"),
                "DesiredCount": 1,
                "CapacityProviderStrategy": [{"CapacityProvider": "FARGATE", "Weight": 1}],
                "NetworkConfiguration": self.awsvpc(),
                "DeploymentConfiguration": {"MinimumHealthyPercent": 0, "MaximumPercent": 100},
            },
            DependsOn=["ClusterCapacity"],
        )
        self.output("ControllerService", att("ControllerService", "Name"), "ECS service of the scaler")


def _template_arn(template_id: Json | str) -> Json:
    return sub(
        "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:launch-template/${T}", T=template_id
    )


def template(settings: Settings) -> Json:
    """The stack for this config (pure)."""
    return _Builder(settings).build()


def deployed_config(raw: Json, settings: Settings, outputs: dict[str, str]) -> Json:
    """The user's config (as written) with the stack's names filled in: the new `ebbtide.yaml`."""
    out = dict(raw)
    region = settings.aws.region
    if scaler_only(settings):  # the queue, store and pools are the user's: only the region is filled in
        out["aws"] = {**raw.get("aws", {}), "region": region}
        return out
    prefix = outputs.get("MediaPrefix", "")
    store = f"s3://{outputs['BucketName']}" + (f"/{prefix}" if prefix and prefix != "-" else "")
    out["queue"] = {**raw.get("queue", {}), "url": f"sqs://{outputs['QueueName']}", "region": region}
    out["store"] = {**raw.get("store", {}), "url": store, "region": region}
    out["store"].update(cloudfront.deployed_store(outputs))
    if settings.aws.endpoint_url:
        out["queue"]["endpoint_url"] = out["store"]["endpoint_url"] = settings.aws.endpoint_url
    out["aws"] = {**raw.get("aws", {}), "region": region}
    subnets = [s for s in outputs.get("Subnets", "").split(",") if s]
    fleet = dict(raw.get("fleet", {}))
    pools = []
    for p in fleet.get("pools", []):
        pool = PoolConfig.model_validate(p)
        pid = pool_id(pool)
        if pool.workers == "foreign":  # the user's resources, named in the config already
            pools.append(p)
            continue
        options = dict(p.get("options", {}))
        if pool.provider == "ec2":
            options.update(
                launch_template=outputs[f"{pid}LaunchTemplate"], user_data="template", subnets=subnets
            )
        elif pool.provider == "asg":
            options.update(asg_name=outputs[f"{pid}Group"])
        elif pool.provider == "ecs-service":
            options.update(cluster=outputs["ClusterName"], service=outputs[f"{pid}Service"])
        elif pool.provider == "ecs-task":
            options.update(
                cluster=outputs["ClusterName"],
                task_definition=outputs[f"{pid}TaskDefinition"],
                subnets=subnets,
                security_groups=[outputs["SecurityGroup"]],
                assign_public_ip=True,
            )
        pools.append({**p, "options": options})
    if pools:
        fleet["pools"] = pools
        out["fleet"] = fleet
    return out
