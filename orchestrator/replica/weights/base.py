"""What every weights store offers the fetcher: list objects under a prefix, read one from an offset.

Each store (S3, GCS, Azure Blob) is a thin adapter over its SDK; resuming, checksum
verification and the cache layout live once, in `fetch.py`.
"""

from __future__ import annotations

import base64
import hashlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import BinaryIO, Literal

from orchestrator.errors import GpufleetError

ChecksumKind = Literal["md5", "crc32c", "s3-multipart-md5"]
READ_CHUNK_BYTES = 8 * 1024 * 1024


class WeightsError(GpufleetError):
    """Weights could not be listed, fetched or verified."""


@dataclass(frozen=True)
class Checksum:
    """A store's own checksum of an object. `part_size` only for S3 multipart ETags."""

    kind: ChecksumKind
    value: str  # hex digest (md5, s3-multipart-md5) or base64 big-endian (crc32c), as the store reports it
    part_size: int | None = None

    def matches(self, path_: str) -> bool:
        """Whether the local file at `path_` has this checksum."""
        return self.of_file(path_) == self.value

    def of_file(self, path_: str) -> str:
        with open(path_, "rb") as handle:
            if self.kind == "md5":
                return _md5(handle).hexdigest()
            if self.kind == "crc32c":
                return _crc32c(handle)
            return _s3_multipart_md5(handle, self.part_size or 0)


@dataclass(frozen=True)
class RemoteObject:
    """One object of a model's weights: its key relative to the source prefix, size, checksum."""

    key: str
    size: int
    checksum: Checksum | None


class ObjectStore(ABC):
    """A bucket/container prefix holding one model's files."""

    @abstractmethod
    def list(self) -> list[RemoteObject]:
        """Every object under the prefix (keys relative to it)."""

    @abstractmethod
    def download(self, obj: RemoteObject, out: BinaryIO, start: int) -> None:
        """Write the object's bytes from offset `start` to its end into `out`."""


def _md5(handle: BinaryIO) -> hashlib._Hash:
    digest = hashlib.md5(usedforsecurity=False)
    while chunk := handle.read(READ_CHUNK_BYTES):
        digest.update(chunk)
    return digest


def _s3_multipart_md5(handle: BinaryIO, part_size: int) -> str:
    """S3's multipart ETag: md5 of the parts' binary md5s, then '-<parts>'."""
    if part_size <= 0:
        raise WeightsError("an S3 multipart checksum needs the part size")
    digests = []
    while part := handle.read(part_size):
        digests.append(hashlib.md5(part, usedforsecurity=False).digest())
    return f"{hashlib.md5(b''.join(digests), usedforsecurity=False).hexdigest()}-{len(digests)}"


def _crc32c(handle: BinaryIO) -> str:
    import google_crc32c  # comes with google-cloud-storage, the only store reporting crc32c

    checksum = google_crc32c.Checksum()
    while chunk := handle.read(READ_CHUNK_BYTES):
        checksum.update(chunk)
    return base64.b64encode(checksum.digest()).decode()
