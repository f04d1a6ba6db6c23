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
    url: QueueUrl = Field(
        "",
        description="sqlite:///FILE, sqs://NAME, redis://HOST/DB, postgresql://…; empty: data_dir/queue.db",
    )
    name: str = Field("jobs", pattern=r"^[A-Za-z0-9_-]{1,80}$", description="queue name within the backend")
    lease: Duration = Field(120.0, description="visibility timeout a worker takes; extended every lease/3")
    wait: Duration = Field(20.0, le=20.0, description="long-poll wait; SQS allows at most 20 s")
    max_receives: int = Field(5, ge=1, le=1000, description="deliveries before a message is dead-lettered")
    backoff_base: Duration = Field(10.0, description="retry delay after a failed attempt: base * 2^(n-1) …")
    backoff_max: Duration = Field(600.0, description="… capped here")
    endpoint_url: str | None = Field(None, description="SQS-compatible endpoint (moto, localstack)")
    region: str | None = Field(None, description="SQS region (default: aws.region)")
    resend_after: Duration = Field(
        20.0, gt=0, description="re-send a job queued in the catalog this long without a live message"
    )


class CatalogConfig(Section):
    url: CatalogUrl = Field(
        "", description="sqlite:///FILE | postgresql://USER@HOST/DB; empty: <data_dir>/catalog.db"
    )


class StoreConfig(Section):
    url: StoreUrl = Field("", description="file://DIR | s3://BUCKET/PREFIX; empty: <data_dir>/store")
    endpoint_url: str | None = Field(None, description="S3-compatible endpoint: Wasabi, MinIO, moto")
    region: str | None = Field(None, description="S3 region (default: aws.region)")
    secret: str | None = Field(
        None, description="HMAC key of the file store's signed URLs; empty: generated in data_dir/secret.key"
    )
    signed_url_ttl: Duration = Field(3600.0, description="how long a signed media URL stays valid")
    sign_window: Duration = Field(
        3600.0,
        ge=0,
        description="signed GET URLs expire on multiples of this, so one window hands everyone the same "
        "(cacheable) URL; 0 signs each URL for exactly signed_url_ttl",
    )
    cloudfront_domain: str | None = Field(
        None, description="S3 store: sign media URLs for this CloudFront distribution (d1234.cloudfront.net)"
    )
    cloudfront_key_pair_id: str | None = Field(
        None, description="id of the CloudFront public key (in the distribution's key group) the URLs name"
    )
    cloudfront_private_key: str | None = Field(
        None, description="PEM file of the RSA private key that signs CloudFront URLs (never logged)"
    )
    multipart_threshold: Size = Field(64 * 1024 * 1024, description="S3 uploads this big go in parts")
    multipart_chunk: Size = Field(16 * 1024 * 1024, description="size of one multipart part")


class Rung(Section):
    height: int = Field(gt=0, le=4320, description="rendition height in pixels (width for portrait sources)")
    bitrate_kbps: int = Field(gt=0, description="video bitrate of this rendition")


DEFAULT_RUNGS = (
    Rung(height=1080, bitrate_kbps=6000),
    Rung(height=720, bitrate_kbps=3000),
    Rung(height=480, bitrate_kbps=1500),
    Rung(height=360, bitrate_kbps=730),
)


class MediaLimits(Section):
    """What a stranger's upload may ask of a worker; checked at probe time in the web and the worker."""

    max_duration: Duration = Field(
        4 * 3600.0, gt=0, description="longest video accepted (declared or measured)"
    )
    max_pixels: int = Field(
        4096 * 4096, gt=0, description="largest frame accepted, in pixels (width x height)"
    )
    max_fps: float = Field(240.0, gt=0, description="highest frame rate accepted")
    max_streams: int = Field(16, ge=1, description="most streams (video, audio, subtitles, data) in one file")
    max_timestamp_gap: Duration = Field(60.0, gt=0, description="longest jump between two video frames")
    max_input_size: Size = Field(8 * 1024**3, gt=0, description="largest input file accepted, in bytes")
    max_memory: Size = Field(
        3 * 1024**3, gt=0, description="memory cap of each ffmpeg run (cgroup v2 or RLIMIT_AS)"
    )
    probe_memory: Size = Field(1024**3, gt=0, description="memory cap of each probe process")
    probe_timeout: Duration = Field(60.0, gt=0, description="wall-time limit of one probe")
    time_factor: float = Field(4.0, gt=0, description="ffmpeg time budget = duration / pool speed x this")
    max_time_factor: float = Field(
        16.0, gt=0, description="time_factor doubles per attempt of a still-progressing encode up to this"
    )
    stall_timeout: Duration = Field(
        60.0, gt=0, description="an encode over budget whose output time sat still this long is stuck (dead)"
    )
    time_floor: Duration = Field(300.0, gt=0, description="the smallest ffmpeg time budget")
    web_probes: int = Field(2, ge=1, description="probes the web runs at once; more get 503")


class MediaConfig(Section):
    encoder: Literal["auto", "libx264", "h264_nvenc"] = Field(
        "auto", description="auto uses NVENC only when it really encodes, else libx264"
    )
    segment_format: Literal["fmp4", "ts"] = Field("fmp4", description="fmp4 (CMAF) or MPEG-TS segments")
    segment_seconds: Duration = Field(6.0, description="target HLS segment length")
    gop_seconds: Duration = Field(2.0, description="keyframe interval")
    preset: str = Field("veryfast", description="x264 preset (NVENC presets are mapped)")
    rungs: tuple[Rung, ...] = Field(DEFAULT_RUNGS, description="the ladder; never upscaled")
    audio_bitrate_kbps: int = Field(128, description="AAC bitrate of the shared audio rendition")
    max_fps: float = Field(60.0, description="higher frame rates are halved until they fit")
    threads: int = Field(0, ge=0, description="ffmpeg threads, 0 = automatic")
    chunk_min_seconds: Duration = Field(
        120.0, ge=0, description="split a source into parallel chunks no shorter than this; 0 = never split"
    )
    max_chunks: int = Field(32, ge=1, description="most chunks one source is split into")
    limits: MediaLimits = Field(default_factory=MediaLimits, description="bounds on hostile or huge input")


class WorkerConfig(Section):
    """(The lease a worker asks for and extends is `queue.lease`: one fact, one key.)"""

    grace: Duration = Field(30.0, description="how long a stopping worker may finish its job")
    progress_every: Duration = Field(2.0, gt=0, description="how often a busy worker writes its progress")
    idle_exit: Duration | None = Field(None, description="exit 0 after this long without a job (null: never)")
    orphan_idle_exit: Duration = Field(
        300.0, description="idle exit for a local worker whose launcher (`ebbtide up`) died"
    )
    silent_timeout: Duration = Field(
        300.0, gt=0, description="a worker not heard from this long is marked gone, its attempt lost"
    )
    outage_budget: Duration = Field(
        600.0, description="how long a worker retries an unreachable queue or catalog before exiting"
    )
    temp_dir: str | None = Field(None, description="scratch space for transcodes (null: the system temp dir)")
    imds_url: str = Field("http://169.254.169.254", description="EC2 metadata service, for spot notices")
    spot_poll: Duration = Field(5.0, description="how often to ask IMDS for a spot interruption notice")
    spot_watch: Literal["auto", "on", "off"] = Field("auto", description="watch spot notices (auto: on EC2)")
    ecs_protection: Literal["auto", "on", "off"] = Field(
        "auto", description="ECS task scale-in protection while busy (auto: when $ECS_AGENT_URI is set)"
    )
    heartbeat: bool = Field(True, description="extend leases while working (false only to model old setups)")


class StepRule(Section):
    at_least: int = Field(ge=0, description="queue depth at or above which this step applies")
    capacity: int = Field(ge=0, description="workers wanted at this depth")


class StepPolicyConfig(Section):
    kind: Literal["step"] = Field("step", description="queue depth → exact capacity (ASG step scaling)")
    steps: tuple[StepRule, ...] = Field(
        (StepRule(at_least=1, capacity=1),), description="depth thresholds, each with its capacity"
    )
    scale_in_after: Duration = Field(600.0, description="queue empty this long → 0 workers")
    cooldown: Duration = Field(300.0, description="minimum time between two changes")


class TargetPolicyConfig(Section):
    kind: Literal["target"] = Field("target", description="target tracking on messages per worker")
    target_per_worker: float = Field(1.0, gt=0, description="messages per worker to aim for")
    metric: Literal["visible", "visible_and_in_flight"] = Field(
        "visible", description="which messages count towards the target"
    )
    scale_out_cooldown: Duration = Field(60.0, description="minimum time between two scale-outs")
    scale_in_cooldown: Duration = Field(300.0, description="minimum time between two scale-ins")


class SustainedRule(Section):
    at_least: int = Field(ge=1, description="queue depth that must hold for `hold`")
    workers: int = Field(ge=0, description="workers wanted once it has held")


class SustainedPolicyConfig(Section):
    kind: Literal["sustained"] = Field("sustained", description="thresholds that must hold for a while")
    thresholds: tuple[SustainedRule, ...] = Field(
        (SustainedRule(at_least=5, workers=1), SustainedRule(at_least=15, workers=2)),
        description="depth thresholds, each with its worker count",
    )
    hold: Duration = Field(300.0, description="how long a threshold must hold before it applies")
    idle_to_zero: Duration = Field(600.0, description="queue empty this long → 0 workers")
    cap: int = Field(2, ge=0, description="most workers this policy asks for")


class DeadlinePolicyConfig(Section):
    kind: Literal["deadline"] = Field(
        "deadline", description="buy paid capacity only for work the free pools cannot finish in time"
    )
    target_ready: Duration = Field(1800.0, description="upload-to-ready time that is free; beyond it, priced")
    wait_value_per_hour: float = Field(
        1.0, ge=0, description="dollars one hour of one upload's waiting past target_ready is worth"
    )
    default_job_seconds: Duration = Field(600.0, description="assumed media length when a job's is unknown")
    keep_warm: Literal["auto", "never"] = Field(
        "auto", description="auto keeps an idle paid worker while more work is likely soon"
    )


PolicyConfig = Annotated[
    StepPolicyConfig | TargetPolicyConfig | SustainedPolicyConfig | DeadlinePolicyConfig,
    Field(discriminator="kind"),
]

Provider = Literal["static", "local", "ec2", "asg", "ecs-service", "ecs-task"]


class PoolConfig(Section):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,40}$", description="pool name (lowercase, digits, -)")
    provider: Provider = Field(description="static | local | ec2 | asg | ecs-service | ecs-task")
    min: int = Field(0, ge=0, description="workers kept even when idle")
    max: int = Field(1, ge=0, description="most workers in this pool")
    price_per_hour: float = Field(0.0, ge=0, description="cost of one worker, for the deadline policy")
    boot_time: Duration = Field(5.0, description="expected time from launch to a ready worker")
    boot_timeout: Duration = Field(600.0, description="a launch not seen by then is given up")
    hung_timeout: Duration = Field(
        600.0, description="a worker silent this long (busy or idle) is reaped and its instance stopped"
    )
    speed: float = Field(1.0, gt=0, description="media seconds transcoded per wall-clock second")
    spot: bool = Field(False, description="spot capacity: may be interrupted")
    quota: int | None = Field(None, ge=0, description="account limit on this pool's workers")
    idle_exit: Duration | None = Field(None, description="passed to the pool's workers as --idle-exit")
    options: dict[str, str | int | float | bool | list[str]] = Field(
        default_factory=dict, description="provider-specific: launch_template, subnets, cluster, asg_name, …"
    )
    workers: Literal["ebbtide", "foreign"] = Field(
        "ebbtide",
        description="foreign = the user's own worker processes (docs/foreign-pools.md); they send no "
        "ebbtide heartbeats, so health and busy-ness are read from the queue; requires fleet.depth_source",
    )

    @model_validator(mode="after")
    def _bounds(self) -> PoolConfig:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        return self


def default_local_max() -> int:
    return max(1, (os.cpu_count() or 2) // 2)


DEPTH_SCHEMES = ("bullmq", "sqs")
# pools whose foreign workers ebbtide can steer; static: always-on machines, counted, never touched
FOREIGN_PROVIDERS = ("static", "ec2", "asg", "ecs-service")


class FleetConfig(Section):
    interval: Duration = Field(5.0, description="controller tick period")
    policy: PolicyConfig = Field(
        default_factory=DeadlinePolicyConfig, description="scaling policy: deadline, step, target, sustained"
    )
    pools: tuple[PoolConfig, ...] = Field(
        (), description="pools in priority order; empty: one local pool of CPU count / 2 workers"
    )
    launch_budget: int = Field(4, ge=1, description="launches per tick at most")
    drain_idle_after: Duration = Field(60.0, description="an idle worker is retired only after this long")
    depth_source: str | None = Field(
        None,
        description="scale on this queue instead of ebbtide's own: bullmq://host:port/db/queue or "
        "sqs://name (read only; for workers ebbtide does not run)",
    )

    @model_validator(mode="after")
    def _depth(self) -> FleetConfig:
        # the scheme here; the whole URL is parsed by queue/depth.py when the fleet opens it
        if self.depth_source is not None and urlparse(self.depth_source).scheme not in DEPTH_SCHEMES:
            raise ValueError(
                f"depth_source {self.depth_source!r}: use bullmq://host:port/db/queue or sqs://queue-name"
            )
        return self

    @model_validator(mode="after")
    def _foreign(self) -> FleetConfig:
        for p in self.pools:
            if p.workers != "foreign":
                continue
            if self.depth_source is None:
                raise ValueError(
                    f"pool {p.name} has foreign workers: set fleet.depth_source to the queue they consume"
                )
            if p.provider not in FOREIGN_PROVIDERS:
                raise ValueError(
                    f"pool {p.name}: foreign workers need provider {', '.join(FOREIGN_PROVIDERS)}, "
                    f"not {p.provider}"
                )
        return self

    @model_validator(mode="after")
    def _unique(self) -> FleetConfig:
        names = [p.name for p in self.pools]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"pool names must be unique; repeated: {', '.join(sorted(dup))}")
        return self


class OidcConfig(Section):
    jwks_url: str = Field(description="where the identity provider publishes its signing keys")
    issuer: str | None = Field(None, description="required `iss` of tokens")
    audience: str = Field(
        min_length=1, description="required: the client id tokens must name in aud (or client_id)"
    )
    admin_group: str | None = Field(None, description="members of this group are admins")


class WebConfig(Section):
    host: str = Field("127.0.0.1", description="bind address")
    port: int = Field(8000, ge=1, le=65535, description="bind port")
    public_url: str | None = Field(
        None, description="where users reach the app (signed file-store URLs point here)"
    )
    session_secret: str | None = Field(None, description="signs session cookies; empty: the store secret")
    oidc: OidcConfig | None = Field(None, description="accept OIDC bearer tokens (null: off)")
    max_upload: Size = Field(8 * 1024**3, description="largest accepted upload")
    workers: int | None = Field(
        None, ge=1, le=64, description="processes for `ebbtide serve` (default: one per core, at most 8)"
    )
    accel_redirect: str | None = Field(
        None,
        pattern=r"^/[A-Za-z0-9_/-]*/$",
        description="hand local-store files to a fronting nginx via X-Accel-Redirect under this internal "
        "location, e.g. /_ebbtide_files/ (see `ebbtide nginx-conf`)",
    )
    fast_path: bool = Field(
        True, description="answer signed file GETs and cached signed playlists before routing (fastpath.py)"
    )
    allowed_hosts: tuple[str, ...] = Field(
        (), description="Host names the app answers to; empty: loopback, web.host and public_url; '*': any"
    )
    docs: Literal["admin", "public", "off"] = Field(
        "admin", description="who may open /docs and /openapi.json"
    )
    metrics_token: str | None = Field(None, description="when set, /metrics wants Authorization: Bearer <it>")
    body_timeout: Duration = Field(
        30.0, gt=0, description="a request body that stalls this long is cut off (408)"
    )
    session_ttl: Duration = Field(14 * 86400.0, gt=0, description="how long a login cookie lasts")
    password_min_length: int = Field(10, ge=8, le=1000, description="shortest password accepted")
    login_max_failures: int = Field(
        5, ge=1, description="failed logins per account in login_window before 429"
    )
    login_max_failures_per_address: int = Field(
        20, ge=1, description="failed logins per client address in login_window before 429"
    )
    login_window: Duration = Field(300.0, gt=0, description="the window (and lockout) of the login throttle")
    max_form_fields: int = Field(16, ge=1, description="text fields a direct upload may carry")
    max_form_field_size: Size = Field(64 * 1024, description="bytes of one text field of a direct upload")
    upload_ttl: Duration = Field(
        86400.0, gt=0, description="signed and multipart uploads never completed are swept after this"
    )
    quota_bytes: Size | None = Field(
        None, description="per-user limit on stored uploads (bytes); none: no limit"
    )
    quota_videos: int | None = Field(None, ge=1, description="per-user limit on videos; none: no limit")


class AwsConfig(Section):
    region: str = Field("us-east-1", description="default AWS region")
    endpoint_url: str | None = Field(None, description="AWS endpoint override (moto, localstack)")
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
    cdn: bool = Field(False, description="put a CloudFront distribution (origin access control, signed URLs) "
                      "in front of the media bucket")
    cdn_public_key: str | None = Field(None, description="PEM file of the RSA public key CloudFront checks "
                                       "viewers' URLs with (default: store.cloudfront_private_key's half)")


_FIELD = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"


class IntakeMapping(Section):
    """How one foreign producer's JSON message becomes an ebbtide transcode job."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,40}$", description="names the mapping in logs and ids")
    external_id: str = Field(pattern=_FIELD, description="message field holding the producer's own job id")
    source: str = Field(description="source location template, e.g. s3://bucket/{org_id}/{media_id}.mp4")
    owner: str = Field(description="ebbtide user name the media belongs to; may use {fields}")
    title: str = Field("{" + "external_id" + "}", description="media title template; may use {fields}")
    require: tuple[str, ...] = Field((), description="further fields a message must have to match")
    metadata: tuple[str, ...] = Field((), description="message fields kept on the job as metadata")

    @model_validator(mode="after")
    def _template(self) -> IntakeMapping:
        if not self.source.startswith("s3://") or "/" not in self.source[5:]:
            raise ValueError(f"source {self.source!r} must look like s3://bucket/key-template")
        return self


class IntakeConfig(Section):
    mappings: tuple[IntakeMapping, ...] = Field((), description="foreign message formats turned into jobs")


class SourcesConfig(Section):
    """Objects transcoded where they already are (a user's own bucket), never copied in first."""

    endpoint_url: str | None = Field(None, description="S3-compatible endpoint of source buckets (Wasabi…)")
    region: str | None = Field(None, description="region of the source buckets")
    allow_buckets: tuple[str, ...] = Field((), description="buckets any user may submit sources from")


class EventsConfig(Section):
    webhook_urls: tuple[str, ...] = Field((), description="URLs that receive state-change events")
    secret: str | None = Field(None, description="HMAC-SHA256 key signing each webhook body")
    timeout: Duration = Field(10.0, description="seconds one webhook delivery may take")
    max_attempts: int = Field(12, ge=1, description="deliveries tried before an event is given up")
    backoff_base: Duration = Field(1.0, description="first retry delay; doubles each attempt")
    backoff_max: Duration = Field(300.0, description="longest retry delay")
    progress_every: Duration = Field(5.0, description="at most one progress event per media this often")


class CorsConfig(Section):
    origins: tuple[str, ...] = Field((), description="origins allowed to fetch streams and files ('*' = any)")
    max_age: int = Field(600, ge=0, description="seconds a browser may cache a preflight answer")
