"""CloudFront in `ebbtide aws plan` (aws.cdn), read from the template.

moto's CloudFormation has no CloudFront resources (and skips bucket policies), so a distribution
cannot be deployed there: these check the template, and deploy/lint/run.sh runs cfn-lint, checkov
and parliament on the example `deploy/examples/s3-cloudfront.yaml`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ebbtide.config import Settings, load_settings
from ebbtide.deploy import cloudfront
from ebbtide.deploy.stack import deployed_config, template
from ebbtide.errors import ConfigError


def settings(tmp_path: Path, **raw: Any) -> Settings:
    path = tmp_path / "ebbtide.yaml"
    path.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "data"), **raw}))
    return load_settings(path, env={})


def of_type(tpl: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in tpl["Resources"].items() if v["Type"] == kind}


def test_distribution_reads_the_private_bucket_only_through_its_origin_access(tmp_path: Path) -> None:
    s = settings(tmp_path, store={"url": "s3://media-b/vid"}, aws={"cdn": True})
    tpl = template(s)
    dist = of_type(tpl, "AWS::CloudFront::Distribution")["MediaCdn"]["DistributionConfig"]
    (origin,) = dist["Origins"]
    assert origin["DomainName"] == {"Fn::GetAtt": ["MediaBucket", "RegionalDomainName"]}
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": ["MediaCdnAccess", "Id"]}
    assert origin["OriginPath"] == "/vid" and origin["S3OriginConfig"] == {"OriginAccessIdentity": ""}
    behaviour = dist["DefaultCacheBehavior"]
    assert behaviour["TrustedKeyGroups"] == [{"Ref": "MediaCdnKeyGroup"}]  # every request needs a signed URL
    assert behaviour["ViewerProtocolPolicy"] == "https-only"
    assert set(behaviour["AllowedMethods"]) == {"GET", "HEAD", "OPTIONS"}
    assert behaviour["CachePolicyId"] == cloudfront.CACHING_OPTIMIZED  # query string not in the cache key
    oac = of_type(tpl, "AWS::CloudFront::OriginAccessControl")["MediaCdnAccess"]["OriginAccessControlConfig"]
    assert oac["SigningBehavior"] == "always" and oac["OriginAccessControlOriginType"] == "s3"
    group = of_type(tpl, "AWS::CloudFront::KeyGroup")["MediaCdnKeyGroup"]["KeyGroupConfig"]
    assert group["Items"] == [{"Ref": "MediaCdnKey"}]
    key = of_type(tpl, "AWS::CloudFront::PublicKey")["MediaCdnKey"]["PublicKeyConfig"]
    assert key["EncodedKey"] == {"Ref": "CdnPublicKey"} and "CdnPublicKey" in tpl["Parameters"]
    # the bucket: still private; the one Allow is for this distribution, only under the prefix
    bucket = of_type(tpl, "AWS::S3::Bucket")["MediaBucket"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    statements = of_type(tpl, "AWS::S3::BucketPolicy")["MediaBucketPolicy"]["PolicyDocument"]["Statement"]
    (allow,) = [st for st in statements if st["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"} and allow["Action"] == "s3:GetObject"
    assert allow["Resource"] == {"Fn::Sub": "${MediaBucket.Arn}/vid/*"}
    arn = allow["Condition"]["StringEquals"]["AWS:SourceArn"]["Fn::Sub"]
    assert arn.endswith(":distribution/${MediaCdn}")
    assert any(st["Effect"] == "Deny" and st["Sid"] == "TlsOnly" for st in statements)
    assert set(tpl["Outputs"]) >= {"CdnDomain", "CdnKeyId"}
    assert tpl == template(s)


def test_no_cdn_no_cloudfront(tmp_path: Path) -> None:
    tpl = template(settings(tmp_path, store={"url": "s3://media-b/vid"}))
    assert not [r for r in tpl["Resources"].values() if r["Type"].startswith("AWS::CloudFront::")]
    assert "CdnPublicKey" not in tpl["Parameters"]
    assert cloudfront.parameters(settings(tmp_path), tpl) == []


def test_deploy_passes_the_public_key_and_writes_the_signing_config(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = tmp_path / "cf.pem"
    pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    raw = {"store": {"url": "s3://media-b/vid", "cloudfront_private_key": str(pem)}, "aws": {"cdn": True}}
    s = settings(tmp_path, **raw)
    tpl = template(s)
    (param,) = cloudfront.parameters(s, tpl)
    assert param["ParameterKey"] == "CdnPublicKey"
    pattern = tpl["Parameters"]["CdnPublicKey"]["AllowedPattern"]
    assert re.fullmatch(pattern, param["ParameterValue"])  # CloudFormation would accept it
    public = serialization.load_pem_public_key(param["ParameterValue"].encode())
    assert public.public_numbers() == key.public_key().public_numbers()  # type: ignore[union-attr]
    assert "PRIVATE" not in param["ParameterValue"]
    outputs = {"BucketName": "media-b", "MediaPrefix": "vid", "QueueName": "q",
               "CdnDomain": "d123.cloudfront.net", "CdnKeyId": "K123"}  # fmt: skip
    store = deployed_config(raw, s, outputs)["store"]
    assert store["cloudfront_domain"] == "d123.cloudfront.net" and store["cloudfront_key_pair_id"] == "K123"
    assert store["cloudfront_private_key"] == str(pem) and store["url"] == "s3://media-b/vid"
    with pytest.raises(ConfigError, match="public key"):
        cloudfront.parameters(settings(tmp_path, store={"url": "s3://media-b/vid"}, aws={"cdn": True}), tpl)
