"""Config sections, one model each. Every model forbids unknown keys."""

from __future__ import annotations

import os
from typing import Annotated, Literal
from urllib.parse import urlparse

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from ebbtide.config.types import Duration, Size


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _url_with(schemes: tuple[str, ...]) -> AfterValidator:
    def check(value: str) -> str:
        scheme = urlparse(value).scheme
        if scheme not in schemes:
            allowed = ", ".join(f"{s}://" for s in schemes)
            raise ValueError(f"{value!r} is not a supported URL; allowed schemes: {allowed}")
        return value

    return AfterValidator(check)


QueueUrl = Annotated[str, _url_with(("sqlite", "sqs", "redis", "rediss", "postgresql", "postgres"))]
CatalogUrl = Annotated[str, _url_with(("sqlite", "postgresql", "postgresql+psycopg", "postgres"))]
StoreUrl = Annotated[str, _url_with(("file", "s3"))]


class QueueConfig(Section):
    url: QueueUrl = ""  # filled from data_dir when empty
    name: str = Field("jobs", pattern=r"^[A-Za-z0-9_-]{1,80}$")
    lease: Duration = 120.0
    wait: Duration = Field(20.0, le=20.0, description="long-poll wait; SQS allows at most 20 s")
    max_receives: int = Field(5, ge=1, le=1000)
    backoff_base: Duration = 10.0
    backoff_max: Duration = 600.0
    endpoint_url: str | None = None  # SQS-compatible endpoint (moto, localstack)
    region: str | None = None


class CatalogConfig(Section):
    url: CatalogUrl = ""


class StoreConfig(Section):
    url: StoreUrl = ""
    endpoint_url: str | None = None  # S3-compatible endpoint: Wasabi, MinIO, moto
    region: str | None = None
    secret: str | None = Field(None, description="HMAC secret for the file store's signed URLs")
    signed_url_ttl: Duration = 3600.0
    multipart_threshold: Size = 64 * 1024 * 1024
    multipart_chunk: Size = 16 * 1024 * 1024


class Rung(Section):
    height: int = Field(gt=0, le=4320)
    bitrate_kbps: int = Field(gt=0)


DEFAULT_RUNGS = (
    Rung(height=1080, bitrate_kbps=6000),
    Rung(height=720, bitrate_kbps=3000),
    Rung(height=480, bitrate_kbps=1500),
    Rung(height=360, bitrate_kbps=730),
)


class MediaConfig(Section):
    encoder: Literal["auto", "libx264", "h264_nvenc"] = "auto"
    segment_format: Literal["fmp4", "ts"] = "fmp4"
    segment_seconds: Duration = 6.0
    gop_seconds: Duration = 2.0
    preset: str = "veryfast"
    rungs: tuple[Rung, ...] = DEFAULT_RUNGS
    audio_bitrate_kbps: int = 128
    max_fps: float = 60.0
    threads: int = Field(0, ge=0, description="ffmpeg threads, 0 = automatic")


class WorkerConfig(Section):
    lease: Duration = 120.0
    grace: Duration = Field(30.0, description="how long a stopping worker may finish its job")
    idle_exit: Duration | None = None
    temp_dir: str | None = None
    imds_url: str = "http://169.254.169.254"
    spot_poll: Duration = 5.0
    spot_watch: Literal["auto", "on", "off"] = "auto"
    ecs_protection: Literal["auto", "on", "off"] = "auto"
    heartbeat: bool = True  # only for experiments and the simulator's AWS-like setups


class StepRule(Section):
    at_least: int = Field(ge=0, description="queue depth at or above which this step applies")
    capacity: int = Field(ge=0)


class StepPolicyConfig(Section):
    kind: Literal["step"] = "step"
    steps: tuple[StepRule, ...] = (StepRule(at_least=1, capacity=1),)
    scale_in_after: Duration = 600.0  # queue empty this long -> 0 (seed 000's scale-to-zero alarm)
    cooldown: Duration = 300.0


class TargetPolicyConfig(Section):
    kind: Literal["target"] = "target"
    target_per_worker: float = Field(1.0, gt=0)
    metric: Literal["visible", "visible_and_in_flight"] = "visible"
    scale_out_cooldown: Duration = 60.0
    scale_in_cooldown: Duration = 300.0


class SustainedRule(Section):
    at_least: int = Field(ge=1)
    workers: int = Field(ge=0)


class SustainedPolicyConfig(Section):
    kind: Literal["sustained"] = "sustained"
    thresholds: tuple[SustainedRule, ...] = (
        SustainedRule(at_least=5, workers=1),
        SustainedRule(at_least=15, workers=2),
    )
    hold: Duration = 300.0
    idle_to_zero: Duration = 600.0
    cap: int = Field(2, ge=0)


class DeadlinePolicyConfig(Section):
    kind: Literal["deadline"] = "deadline"
    target_ready: Duration = Field(1800.0, description="aim for each upload to be ready within this")
    default_job_seconds: Duration = 600.0  # when a job's media duration is unknown
    keep_warm: Literal["auto", "never"] = "auto"


PolicyConfig = Annotated[
    StepPolicyConfig | TargetPolicyConfig | SustainedPolicyConfig | DeadlinePolicyConfig,
    Field(discriminator="kind"),
]

Provider = Literal["static", "local", "ec2", "asg", "ecs-service", "ecs-task"]


class PoolConfig(Section):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,40}$")
    provider: Provider
    min: int = Field(0, ge=0)
    max: int = Field(1, ge=0)
    price_per_hour: float = Field(0.0, ge=0)
    boot_time: Duration = 5.0
    boot_timeout: Duration = 600.0
    speed: float = Field(1.0, gt=0, description="media seconds transcoded per wall-clock second")
    spot: bool = False
    quota: int | None = Field(None, ge=0, description="account limit on this pool's workers")
    idle_exit: Duration | None = None  # passed to the pool's workers as --idle-exit
    options: dict[str, str | int | float | bool | list[str]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _bounds(self) -> PoolConfig:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        return self


def default_local_max() -> int:
    return max(1, (os.cpu_count() or 2) // 2)


class FleetConfig(Section):
    interval: Duration = 5.0
    policy: PolicyConfig = Field(default_factory=DeadlinePolicyConfig)
    pools: tuple[PoolConfig, ...] = ()
    launch_budget: int = Field(4, ge=1, description="launches per tick at most")
    drain_idle_after: Duration = 60.0

    @model_validator(mode="after")
    def _unique(self) -> FleetConfig:
        names = [p.name for p in self.pools]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"pool names must be unique; repeated: {', '.join(sorted(dup))}")
        return self


class OidcConfig(Section):
    jwks_url: str
    issuer: str | None = None
    audience: str | None = None
    admin_group: str | None = None


class WebConfig(Section):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    public_url: str | None = None
    session_secret: str | None = None
    oidc: OidcConfig | None = None
    max_upload: Size = 8 * 1024**3


class AwsConfig(Section):
    region: str = "us-east-1"
    endpoint_url: str | None = None
    stack_name: str = Field("ebbtide", pattern=r"^[A-Za-z][A-Za-z0-9-]{0,30}$",
                            description="CloudFormation stack that `ebbtide aws deploy` creates")
    vpc: str | None = Field(None, description="VPC for the stack's workers; empty: the default VPC")
    subnets: tuple[str, ...] = Field((), description="subnets for workers and tasks; empty: the VPC's")
    ami: str | None = Field(None, description="AMI of EC2/ASG workers; empty: Debian 12 (SSM public)")
    install: str = Field("ebbtide", description="pip requirement a stock AMI installs at boot")
    image: str = Field("ghcr.io/ebbtide/worker:0.1.0", description="container image of CPU ECS workers")
    gpu_image: str = Field("ghcr.io/ebbtide/worker-gpu:0.1.0",
                           description="container image of ECS workers on pools with options.gpu")
    controller_image: str = Field("ghcr.io/ebbtide/web:0.1.0",
                                  description="container image of the controller's ECS service")
    controller: Literal["ecs", "none"] = Field(
        "ecs", description="run the scaler as an ECS service (none: it runs on your edge box)")
    log_retention_days: int = Field(30, ge=1, description="CloudWatch log retention of the stack's logs")
