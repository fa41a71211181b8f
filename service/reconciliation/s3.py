"""Bank statements in S3 (or an S3-compatible store): s3://AWS_S3_BUCKET/AWS_S3_PREFIX
<bank_code>/<file>.csv and banks.json, listed page by page and read as streamed bodies."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from service.reconciliation.sources import BLOCK, FORMATS_FILE, BankFormat, parse_formats
from service.settings import Settings


def client(settings: Settings) -> Any:
    import boto3
    from botocore.config import Config

    key = settings.aws_access_key_id
    secret = settings.aws_secret_access_key
    # An explicit endpoint is an S3-compatible server (MinIO, a test server): those are
    # addressed by path, not by bucket subdomain.
    config = Config(s3={"addressing_style": "path"} if settings.aws_endpoint_url else {},
                    retries={"max_attempts": 5, "mode": "standard"})
    return boto3.client(
        "s3", region_name=settings.aws_region, endpoint_url=settings.aws_endpoint_url,
        aws_access_key_id=key.get_secret_value() if key else None,
        aws_secret_access_key=secret.get_secret_value() if secret else None, config=config)


@dataclass(frozen=True)
class S3Source:
    s3: Any
    bucket: str
    key: str
    bank: str

    @property
    def location(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def blocks(self) -> Iterator[bytes]:
        body = self.s3.get_object(Bucket=self.bucket, Key=self.key)["Body"]
        try:
            yield from body.iter_chunks(BLOCK)
        finally:
            body.close()


@dataclass(frozen=True)
class S3Inbox:
    s3: Any
    bucket: str
    prefix: str = ""

    @property
    def _prefix(self) -> str:
        return self.prefix.strip("/") + "/" if self.prefix.strip("/") else ""

    def formats(self) -> dict[str, BankFormat]:
        try:
            reply = self.s3.get_object(Bucket=self.bucket, Key=self._prefix + FORMATS_FILE)
        except self.s3.exceptions.NoSuchKey:
            return {}
        with reply["Body"] as body:  # a small mapping file, read whole
            return parse_formats(body.read().decode("utf-8"))

    def sources(self) -> Iterator[S3Source]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket,
                                                                   Prefix=self._prefix)
        keys = sorted(item["Key"] for page in pages for item in page.get("Contents", ()))
        for key in keys:
            parts = key[len(self._prefix):].split("/")
            if len(parts) == 2 and parts[0] and parts[1].endswith(".csv"):
                yield S3Source(self.s3, self.bucket, key, parts[0])
