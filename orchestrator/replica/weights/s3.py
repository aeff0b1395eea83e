"""S3 (and S3-compatible) weights: boto3, ranged GETs, ETag checks.

The endpoint follows boto3's own configuration (AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL,
profiles, instance roles), so a MinIO, a mirror or moto in the tests needs no code here.
"""

from __future__ import annotations

import re
from typing import Any, BinaryIO

from orchestrator.replica.weights.base import READ_CHUNK_BYTES, Checksum, ObjectStore, RemoteObject, WeightsError

_SINGLE_PART = re.compile(r"^[0-9a-f]{32}$")
_MULTIPART = re.compile(r"^[0-9a-f]{32}-\d+$")


class S3Store(ObjectStore):
    def __init__(self, bucket: str, prefix: str, client: Any | None = None) -> None:
        import boto3

        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client or boto3.client("s3")

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def list(self) -> list[RemoteObject]:
        from botocore.exceptions import BotoCoreError, ClientError

        objects = []
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=f"{self.prefix}/" if self.prefix else "")
            for page in pages:
                for item in page.get("Contents", []):
                    key = item["Key"][len(self.prefix) + 1:] if self.prefix else item["Key"]
                    if key and not key.endswith("/"):
                        objects.append(RemoteObject(key, item["Size"], self._checksum(item["Key"], item["ETag"])))
        except (BotoCoreError, ClientError) as exc:
            raise WeightsError(f"cannot list s3://{self.bucket}/{self.prefix}: {exc}. "
                               "To fix: check the bucket name and s3:ListBucket permission") from exc
        return objects

    def _checksum(self, full_key: str, etag: str) -> Checksum | None:
        etag = etag.strip('"')
        if _SINGLE_PART.match(etag):
            return Checksum("md5", etag)
        if _MULTIPART.match(etag):  # part size from the first part, as the AWS CLI does
            head = self.client.head_object(Bucket=self.bucket, Key=full_key, PartNumber=1)
            return Checksum("s3-multipart-md5", etag, part_size=head["ContentLength"])
        return None  # SSE-KMS and similar: the ETag is no digest; the size is still checked

    def download(self, obj: RemoteObject, out: BinaryIO, start: int) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(obj.key), Range=f"bytes={start}-")["Body"]
            for chunk in body.iter_chunks(READ_CHUNK_BYTES):
                out.write(chunk)
        except (BotoCoreError, ClientError) as exc:
            raise WeightsError(f"cannot read s3://{self.bucket}/{self._key(obj.key)}: {exc}") from exc
