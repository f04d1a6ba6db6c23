"""CloudFront in front of the media bucket (`aws.cdn`), as part of `ebbtide aws plan`.

What it adds to the stack (pure, like the rest of the template):

- an origin access control, so the distribution signs its requests to S3 (SigV4) and the bucket
  policy lets only this distribution read, only under the media prefix (the bucket stays private,
  public access blocked);
- a public key (template parameter `CdnPublicKey`, filled by `ebbtide aws deploy` from
  `aws.cdn_public_key` or from the public half of `store.cloudfront_private_key`) in a key group,
  trusted by the distribution: every request needs a signed URL (ebbtide signs them,
  `storage/cloudfront.py`);
- the distribution: origin path = the media prefix, HTTPS only, GET/HEAD/OPTIONS, AWS's managed
  CachingOptimized policy (the query string, signature included, stays out of the cache key: the
  edge checks it, then caches by path) and CORS-S3Origin (the bucket's CORS rules answer players).

Outputs `CdnDomain` and `CdnKeyId` become `store.cloudfront_domain` / `cloudfront_key_pair_id` in
the config `deploy` writes. moto's CloudFormation has no CloudFront resources: the tests check
the template (and cfn-lint/checkov run on it), not a deployed distribution.
"""

from __future__ import annotations

from typing import Any

from ebbtide.config.settings import Settings
from ebbtide.deploy.cfn import Json, att, ref, sub
from ebbtide.errors import ConfigError

CACHING_OPTIMIZED = "658327ea-f89d-4fab-a63d-7e88639e58f6"  # AWS managed cache policy
CORS_S3_ORIGIN = "88a5eaf4-2fd4-4709-b370-b4c650ea3fcf"  # AWS managed origin request policy
PUBLIC_KEY_PARAM = "CdnPublicKey"
DISTRIBUTION_ARN = "arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/${MediaCdn}"

# checkov findings that stay, with why (written into the distribution's Metadata, as stack.ACCEPTED)
ACCEPTED: dict[str, str] = {
    "CKV_AWS_68": "WAF costs per rule and request; every object needs a signed URL already",
    "CKV_AWS_86": "access logs need a log bucket and cost per request; enable them per deployment",
    "CKV_AWS_174": "the default *.cloudfront.net certificate allows TLS 1.0+; a custom domain with an ACM "
    "certificate sets TLSv1.2_2021",
    "CKV_AWS_305": "no default root object: the distribution serves media keys only",
    "CKV_AWS_310": "one origin (the media bucket); failover needs a replica bucket",
    "CKV_AWS_374": "viewers are wherever the videos are watched; no geo restriction by default",
}


def wanted(settings: Settings) -> bool:
    return settings.aws.cdn


def add(builder: Any, settings: Settings) -> None:
    """Add the distribution and its parts to a stack builder (`stack._Builder`)."""
    stack = settings.aws.stack_name
    prefix = str(builder.prefix or "").strip("/")
    builder.params[PUBLIC_KEY_PARAM] = {
        "Type": "String",
        "Description": "PEM of the RSA public key CloudFront checks viewers' signed URLs with",
        "AllowedPattern": "-----BEGIN PUBLIC KEY-----[\\s\\S]+-----END PUBLIC KEY-----\\s*",
    }
    builder.add(
        "MediaCdnAccess",
        "AWS::CloudFront::OriginAccessControl",
        {
            "OriginAccessControlConfig": {
                "Name": sub("${AWS::StackName}-media"),
                "Description": "ebbtide: CloudFront signs its requests to the media bucket",
                "OriginAccessControlOriginType": "s3",
                "SigningBehavior": "always",
                "SigningProtocol": "sigv4",
            }
        },
    )
    builder.add(
        "MediaCdnKey",
        "AWS::CloudFront::PublicKey",
        {
            "PublicKeyConfig": {
                "CallerReference": sub("${AWS::StackName}-viewer-urls"),
                "Comment": "ebbtide signs viewers' media URLs with the private half",
                "EncodedKey": ref(PUBLIC_KEY_PARAM),
                "Name": sub("${AWS::StackName}-viewer-urls"),
            }
        },
    )
    builder.add(
        "MediaCdnKeyGroup",
        "AWS::CloudFront::KeyGroup",
        {"KeyGroupConfig": {"Name": sub("${AWS::StackName}-viewers"), "Items": [ref("MediaCdnKey")]}},
    )
    origin: Json = {
        "Id": "media",
        "DomainName": att("MediaBucket", "RegionalDomainName"),
        "S3OriginConfig": {"OriginAccessIdentity": ""},
        "OriginAccessControlId": att("MediaCdnAccess", "Id"),
    }
    if prefix:
        origin["OriginPath"] = "/" + prefix
    builder.add(
        "MediaCdn",
        "AWS::CloudFront::Distribution",
        {
            "DistributionConfig": {
                "Enabled": True,
                "Comment": f"ebbtide {stack}: signed media from the bucket",
                "HttpVersion": "http2and3",
                "IPV6Enabled": True,
                "PriceClass": "PriceClass_100",
                "Origins": [origin],
                "DefaultCacheBehavior": {
                    "TargetOriginId": "media",
                    "ViewerProtocolPolicy": "https-only",
                    "AllowedMethods": ["GET", "HEAD", "OPTIONS"],
                    "CachedMethods": ["GET", "HEAD", "OPTIONS"],
                    "CachePolicyId": CACHING_OPTIMIZED,
                    "OriginRequestPolicyId": CORS_S3_ORIGIN,
                    "Compress": False,
                    "TrustedKeyGroups": [ref("MediaCdnKeyGroup")],
                },
                "ViewerCertificate": {"CloudFrontDefaultCertificate": True},
            },
        },
        Metadata={"checkov": {"skip": [{"id": k, "comment": v} for k, v in ACCEPTED.items()]}},
    )
    statements = builder.resources["MediaBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    statements.append(bucket_statement(prefix))
    builder.output("CdnDomain", att("MediaCdn", "DomainName"), "CloudFront domain of the media")
    builder.output("CdnKeyId", ref("MediaCdnKey"), "id of the public key signed media URLs name")


def bucket_statement(prefix: str) -> Json:
    """Only this distribution (through its origin access control) may read, only under the prefix."""
    under = f"{prefix}/*" if prefix else "*"
    return {
        "Sid": "OnlyTheDistributionReadsMedia",
        "Effect": "Allow",
        "Principal": {"Service": "cloudfront.amazonaws.com"},
        "Action": "s3:GetObject",
        "Resource": sub(f"${{MediaBucket.Arn}}/{under}"),
        "Condition": {"StringEquals": {"AWS:SourceArn": sub(DISTRIBUTION_ARN)}},
    }


def deployed_store(outputs: dict[str, str]) -> dict[str, str]:
    """The store keys the stack's outputs fill in (nothing when it has no distribution)."""
    if "CdnDomain" not in outputs:
        return {}
    return {"cloudfront_domain": outputs["CdnDomain"], "cloudfront_key_pair_id": outputs["CdnKeyId"]}


def parameters(settings: Settings, template: Json) -> list[dict[str, str]]:
    """`CdnPublicKey` for `aws deploy` when the template has a distribution (reads the key file)."""
    if PUBLIC_KEY_PARAM not in template.get("Parameters", {}):
        return []
    return [{"ParameterKey": PUBLIC_KEY_PARAM, "ParameterValue": public_key(settings)}]


def public_key(settings: Settings) -> str:
    from ebbtide.storage.cloudfront import load_private_key, public_key_pem

    if settings.aws.cdn_public_key:
        try:
            with open(settings.aws.cdn_public_key, encoding="ascii") as fh:
                return fh.read()
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(
                f"cannot read aws.cdn_public_key {settings.aws.cdn_public_key!r}: {e}",
                hint="give the PEM public key file (openssl rsa -in key.pem -pubout -out pub.pem)",
            ) from None
    if settings.store.cloudfront_private_key:
        return public_key_pem(load_private_key(settings.store.cloudfront_private_key))
    raise ConfigError(
        "aws.cdn needs the public key CloudFront checks signed URLs with",
        hint="set aws.cdn_public_key (PEM file) or store.cloudfront_private_key (its private half)",
    )
