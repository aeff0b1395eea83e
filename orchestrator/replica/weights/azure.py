"""Azure Blob Storage weights: azure-storage-blob, ranged downloads, Content-MD5 checks.

`az://ACCOUNT/CONTAINER/PREFIX`. Credentials: AZURE_STORAGE_CONNECTION_STRING when set (also
how the tests point the SDK at their fake), else DefaultAzureCredential (azure-identity).
"""

from __future__ import annotations

import os
from typing import Any, BinaryIO

from orchestrator.replica.weights.base import Checksum, ObjectStore, RemoteObject, WeightsError


def _service_client(account: str) -> Any:
    from azure.storage.blob import BlobServiceClient

    if connection_string := os.environ.get("AZURE_STORAGE_CONNECTION_STRING"):
        return BlobServiceClient.from_connection_string(connection_string)
    try:
        from azure.identity import DefaultAzureCredential
    except ImportError as exc:
        raise WeightsError("az:// weights without AZURE_STORAGE_CONNECTION_STRING need azure-identity. "
                           "To fix: pip install azure-identity, or set the connection string") from exc
    return BlobServiceClient(f"https://{account}.blob.core.windows.net", credential=DefaultAzureCredential())


class AzureBlobStore(ObjectStore):
    def __init__(self, account: str, container: str, prefix: str, client: Any | None = None) -> None:
        try:
            import azure.storage.blob  # noqa: F401
        except ImportError as exc:
            raise WeightsError("az:// weights need azure-storage-blob. To fix: pip install azure-storage-blob") from exc
        self.where = f"az://{account}/{container}"
        self.prefix = prefix.strip("/")
        self.container = (client or _service_client(account)).get_container_client(container)

    def list(self) -> list[RemoteObject]:
        from azure.core.exceptions import AzureError

        objects = []
        try:
            for blob in self.container.list_blobs(name_starts_with=f"{self.prefix}/" if self.prefix else None):
                key = blob.name[len(self.prefix) + 1:] if self.prefix else blob.name
                md5 = blob.content_settings.content_md5
                if key and not key.endswith("/"):
                    objects.append(RemoteObject(key, blob.size, Checksum("md5", bytes(md5).hex()) if md5 else None))
        except AzureError as exc:
            raise WeightsError(f"cannot list {self.where}/{self.prefix}: {exc}. "
                               "To fix: check the account, container and Storage Blob Data Reader role") from exc
        return objects

    def download(self, obj: RemoteObject, out: BinaryIO, start: int) -> None:
        from azure.core.exceptions import AzureError

        name = f"{self.prefix}/{obj.key}" if self.prefix else obj.key
        try:
            for chunk in self.container.download_blob(name, offset=start).chunks():
                out.write(chunk)
        except AzureError as exc:
            raise WeightsError(f"cannot read {self.where}/{name}: {exc}") from exc
