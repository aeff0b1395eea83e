"""Google Cloud Storage weights: google-cloud-storage, ranged downloads, md5/crc32c checks.

Credentials are Application Default Credentials; STORAGE_EMULATOR_HOST (honoured by the SDK
itself) points it at an emulator or the tests' fake.
"""

from __future__ import annotations

import base64
from typing import Any, BinaryIO

from orchestrator.replica.weights.base import Checksum, ObjectStore, RemoteObject, WeightsError


class GcsStore(ObjectStore):
    def __init__(self, bucket: str, prefix: str, client: Any | None = None) -> None:
        try:
            from google.cloud import storage
        except ImportError as exc:
            raise WeightsError("gs:// weights need google-cloud-storage. To fix: pip install google-cloud-storage") from exc
        self.prefix = prefix.strip("/")
        self.bucket = (client or storage.Client()).bucket(bucket)

    def list(self) -> list[RemoteObject]:
        from google.api_core.exceptions import GoogleAPIError

        objects = []
        try:
            for blob in self.bucket.list_blobs(prefix=f"{self.prefix}/" if self.prefix else None):
                key = blob.name[len(self.prefix) + 1:] if self.prefix else blob.name
                if key and not key.endswith("/"):
                    objects.append(RemoteObject(key, blob.size, _checksum(blob)))
        except GoogleAPIError as exc:
            raise WeightsError(f"cannot list gs://{self.bucket.name}/{self.prefix}: {exc}. "
                               "To fix: check the bucket name and storage.objects.list permission") from exc
        return objects

    def download(self, obj: RemoteObject, out: BinaryIO, start: int) -> None:
        from google.api_core.exceptions import GoogleAPIError

        name = f"{self.prefix}/{obj.key}" if self.prefix else obj.key
        try:  # checksum=None: a ranged read has no whole-object hash; fetch.py checks the whole file
            self.bucket.blob(name).download_to_file(out, start=start or None, checksum=None)
        except GoogleAPIError as exc:
            raise WeightsError(f"cannot read gs://{self.bucket.name}/{name}: {exc}") from exc


def _checksum(blob: Any) -> Checksum | None:
    if blob.md5_hash:  # composite objects have none
        return Checksum("md5", base64.b64decode(blob.md5_hash).hex())
    if blob.crc32c:
        return Checksum("crc32c", blob.crc32c)
    return None
