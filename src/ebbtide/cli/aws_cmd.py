"""`ebbtide aws plan|deploy|destroy|pull-config`: the generated stack, applied with CloudFormation.

The template comes from `ebbtide.deploy.stack` (pure); everything that talks to AWS is here.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlparse

import typer
import yaml
from rich.table import Table

from ebbtide.cli import context as ctx
from ebbtide.cli.context import console, err_console
from ebbtide.config import Settings, load_settings
from ebbtide.config.settings import DEFAULT_FILE, ENV_CONFIG
from ebbtide.errors import ConfigError, EbbtideError

CREATE_CAPABILITIES = ["CAPABILITY_IAM"]


class StackError(EbbtideError):
    """CloudFormation refused or rolled back the stack."""


def _config_file() -> Path | None:
    chosen = ctx._config_path or os.environ.get(ENV_CONFIG)
    if chosen:
        return Path(chosen)
    return Path(DEFAULT_FILE) if Path(DEFAULT_FILE).is_file() else None


def _raw(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the config must be a mapping")
    return data


def _client(settings: Settings, service: str, region: str | None = None, endpoint: str | None = None) -> Any:
    import boto3

    return boto3.client(
        service,
        region_name=region or settings.aws.region,
        endpoint_url=endpoint or settings.aws.endpoint_url,
    )


def _aws_error(what: str, e: Exception) -> EbbtideError:
    from botocore.exceptions import ClientError

    if isinstance(e, ClientError):
        err = e.response.get("Error", {})
        return StackError(
            f"{what}: {err.get('Code')}: {err.get('Message')}",
            hint="check credentials, aws.region and the IAM rights to manage stacks",
        )
    return StackError(f"{what}: {e}", hint="check aws.endpoint_url and the network")


def _summary(template: dict[str, Any]) -> Table:
    table = Table(title=f"{len(template['Resources'])} resources", show_edge=False)
    table.add_column("type")
    table.add_column("count", justify="right")
    for kind, n in sorted(Counter(r["Type"] for r in template["Resources"].values()).items()):
        table.add_row(kind, str(n))
    return table


def _network(settings: Settings) -> list[dict[str, str]]:
    """VpcId/SubnetIds: from the config, else the region's default VPC and its default subnets."""
    if settings.aws.vpc and settings.aws.subnets:
        return []
    ec2 = _client(settings, "ec2")
    vpc = settings.aws.vpc
    if not vpc:
        vpcs = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
        if not vpcs:
            raise ConfigError("this region has no default VPC", hint="set aws.vpc and aws.subnets")
        vpc = vpcs[0]["VpcId"]
    subnets = list(settings.aws.subnets)
    if not subnets:
        found = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]
        subnets = sorted(s["SubnetId"] for s in found)
        if not subnets:
            raise ConfigError(f"VPC {vpc} has no subnets", hint="set aws.subnets")
    return [
        {"ParameterKey": "VpcId", "ParameterValue": vpc},
        {"ParameterKey": "SubnetIds", "ParameterValue": ",".join(subnets)},
    ]


def _stack(cfn: Any, name: str) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    try:
        stacks = cfn.describe_stacks(StackName=name)["Stacks"]
    except ClientError as e:
        if "does not exist" in str(e):
            return None
        raise
    return stacks[0] if stacks else None


def _wait(cfn: Any, name: str, waiter: str) -> None:
    from botocore.exceptions import WaiterError

    try:
        cfn.get_waiter(waiter).wait(StackName=name, WaiterConfig={"Delay": 2, "MaxAttempts": 900})
    except WaiterError:
        events = cfn.describe_stack_events(StackName=name).get("StackEvents", [])
        failed = [
            f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', '')}"
            for e in events
            if str(e.get("ResourceStatus", "")).endswith("FAILED")
        ]
        raise StackError(
            f"stack {name} did not reach the end of {waiter}: " + ("; ".join(failed[:3]) or "?"),
            hint="see the stack's events in the CloudFormation console",
        ) from None


def outputs_of(stack: dict[str, Any]) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def register(app: typer.Typer) -> None:
    group = typer.Typer(
        help="Plan, deploy and destroy the AWS stack generated from the config.", no_args_is_help=True
    )

    @group.command("plan")
    def plan(
        fmt: Annotated[str, typer.Option("--format", help="yaml or json")] = "yaml",
        out: Annotated[Path | None, typer.Option("--out", help="write the template here")] = None,
    ) -> None:
        """Print the CloudFormation template for this config, to review before `deploy`."""
        from ebbtide.deploy.stack import template

        tpl = template(ctx.settings())
        text = json.dumps(tpl, indent=2) + "\n" if fmt == "json" else yaml.safe_dump(tpl, sort_keys=False)
        if fmt not in ("yaml", "json"):
            raise ConfigError(f"unknown format {fmt!r}", hint="--format yaml or --format json")
        if out:
            out.write_text(text)
            err_console.print(f"template written to {out}")
        else:
            console.print(text, end="", markup=False, soft_wrap=True)
        err_console.print(_summary(tpl))

    @group.command("deploy")
    def deploy(
        out: Annotated[
            Path | None, typer.Option("--out", help="config to write (default: the one read)")
        ] = None,
    ) -> None:
        """Create or update the stack, then write the config that uses it and upload it for the workers."""
        from botocore.exceptions import BotoCoreError, ClientError

        from ebbtide.deploy.cloudfront import parameters as cdn_parameters
        from ebbtide.deploy.stack import CONFIG_KEY, deployed_config, template

        settings = ctx.settings()
        source = _config_file()
        name = settings.aws.stack_name
        tpl = template(settings)
        cfn = _client(settings, "cloudformation")
        try:
            network = _network(settings) if "VpcId" in tpl.get("Parameters", {}) else []
            params = network + cdn_parameters(settings, tpl)
            body = json.dumps(tpl)
            existing = _stack(cfn, name)
            if existing is None:
                cfn.create_stack(
                    StackName=name,
                    TemplateBody=body,
                    Parameters=params,
                    Capabilities=CREATE_CAPABILITIES,
                    Tags=[{"Key": "ebbtide:stack", "Value": name}],
                )
                _wait(cfn, name, "stack_create_complete")
            else:
                try:
                    cfn.update_stack(
                        StackName=name, TemplateBody=body, Parameters=params, Capabilities=CREATE_CAPABILITIES
                    )
                    _wait(cfn, name, "stack_update_complete")
                except ClientError as e:
                    if "No updates are to be performed" not in str(e):
                        raise
            stack = _stack(cfn, name)
            assert stack is not None
            outputs = outputs_of(stack)
            config = deployed_config(_raw(source), settings, outputs)
            text = yaml.safe_dump(config, sort_keys=False)
            # the media bucket; scaler only: the config bucket, or none (the scaler runs on your box)
            bucket = outputs.get("BucketName") or outputs.get("ConfigBucketName")
            if bucket:
                _client(settings, "s3").put_object(
                    Bucket=bucket, Key=CONFIG_KEY, Body=text.encode(), ServerSideEncryption="AES256"
                )
        except (ClientError, BotoCoreError) as e:
            raise _aws_error(f"deploying stack {name}", e) from None
        target = out or source or Path(DEFAULT_FILE)
        target.write_text(text)
        os.chmod(target, 0o600)
        load_settings(target, env={})  # what was written must load
        uploaded = f" and s3://{bucket}/{CONFIG_KEY}" if bucket else ""
        console.print(f"[green]stack {name} deployed[/]; config written to {target}{uploaded}")
        console.print(
            f"next: ebbtide --config {target} doctor --aws --stack {name} --workers-heartbeat"
        )

    @group.command("destroy")
    def destroy(
        delete_media: Annotated[
            bool, typer.Option("--delete-media", help="empty the media bucket first (deletes every video)")
        ] = False,
    ) -> None:
        """Delete the stack. A bucket holding media stops it unless --delete-media is given."""
        from botocore.exceptions import BotoCoreError, ClientError

        settings = ctx.settings()
        name = settings.aws.stack_name
        cfn = _client(settings, "cloudformation")
        try:
            stack = _stack(cfn, name)
            if stack is None:
                console.print(f"stack {name} does not exist; nothing to do")
                return
            outputs = outputs_of(stack)
            if outputs.get("BucketName"):
                _empty(_client(settings, "s3"), outputs["BucketName"], delete_media)
            if outputs.get("ConfigBucketName"):  # holds only the deployed config: nothing to keep
                _empty(_client(settings, "s3"), outputs["ConfigBucketName"], True)
            cfn.delete_stack(StackName=name)
            _wait(cfn, name, "stack_delete_complete")
        except (ClientError, BotoCoreError) as e:
            raise _aws_error(f"deleting stack {name}", e) from None
        console.print(f"[green]stack {name} deleted[/]")

    @group.command("pull-config")
    def pull_config(
        url: Annotated[str, typer.Argument(help="s3://bucket/key of the deployed config")],
        path: Annotated[Path, typer.Argument(help="where to write it (mode 0600)")],
        region: Annotated[str | None, typer.Option("--region")] = None,
        endpoint_url: Annotated[str | None, typer.Option("--endpoint-url")] = None,
    ) -> None:
        """Fetch the deployed config (what a worker instance or task runs at boot)."""
        from botocore.exceptions import BotoCoreError, ClientError

        u = urlparse(url)
        if u.scheme != "s3" or not u.netloc or not u.path.strip("/"):
            raise ConfigError(
                f"{url!r} is not an s3://bucket/key URL", hint="see the stack's ConfigUrl output"
            )
        s3 = _client(Settings(), "s3", region or os.environ.get("AWS_REGION"), endpoint_url)
        try:
            body = s3.get_object(Bucket=u.netloc, Key=u.path.lstrip("/"))["Body"].read()
        except (ClientError, BotoCoreError) as e:
            raise _aws_error(f"reading {url}", e) from None
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(body)
        load_settings(path, env={})
        err_console.print(f"config from {url} written to {path}")

    app.add_typer(group, name="aws")


def _empty(s3: Any, bucket: str, delete_media: bool) -> None:
    """Delete every object (and version) of the bucket, only when the user asked to."""
    pages = s3.get_paginator("list_object_versions").paginate(Bucket=bucket)
    keys = [
        {"Key": v["Key"], "VersionId": v["VersionId"]}
        for page in pages
        for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
    ]
    if not keys:
        return
    if not delete_media:
        raise EbbtideError(
            f"bucket {bucket} still holds {len(keys)} objects; the stack was not deleted",
            hint="copy what you want to keep, then run again with --delete-media",
        )
    for i in range(0, len(keys), 1000):
        s3.delete_objects(Bucket=bucket, Delete={"Objects": keys[i : i + 1000], "Quiet": True})
