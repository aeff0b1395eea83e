"""Fetch a model's weights into a local cache, resumably and verified, and say where they are.

Sources: `s3://bucket/prefix`, `gs://bucket/prefix`, `az://account/container/prefix`, a
Hugging Face id (`org/name`, through huggingface_hub's own resumable, hash-checked cache;
online only unless cached), or a local path (absolute, `./`, `../`, `~/` or
`${GPUFLEET_HOME}/...`), used in place.

Object stores land in `cache/<scheme>/<bucket>/<prefix>/`. Each object downloads into
`<name>.partial`, continuing from the partial's size after an interruption (a ranged read),
and is renamed into place only once its size and the store's checksum (MD5, S3 multipart
ETag, or CRC32C) match; a mismatch discards the partial and downloads that object once more.
A manifest of verified objects makes a warm start a listing and a few `stat`s. Two replicas
on one host share the cache under a lock.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path, PurePosixPath

from orchestrator.replica.file_lock import file_lock
from orchestrator.replica.weights.base import ObjectStore, RemoteObject, WeightsError

logger = logging.getLogger(__name__)

MANIFEST = ".gpufleet-weights.json"
HOME_PREFIX = "${GPUFLEET_HOME}"
_HF_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def local_source(source: str, home: Path) -> Path | None:
    """The path a local source names, or None when the source is not a local path."""
    if source.startswith(HOME_PREFIX + "/"):
        return home / source[len(HOME_PREFIX) + 1:]
    if source.startswith(("/", "./", "../", "~")):
        return Path(source).expanduser()
    if source.startswith("file://"):
        return Path(source[len("file://"):])
    return None


def fetch_weights(source: str, cache_dir: Path, home: Path) -> Path:
    """A local directory holding the weights `source` names, fetched into `cache_dir` when remote."""
    if (path := local_source(source, home)) is not None:
        if not path.is_dir():
            raise WeightsError(f"model directory {path} (from {source}) does not exist. "
                               "To fix: build or copy the model there, or point the model's source elsewhere")
        return path
    scheme, _, rest = source.partition("://")
    if scheme in ("s3", "gs", "az"):
        store, cache_key = _store(scheme, rest)
        return sync(store, cache_dir / scheme / cache_key)
    if _HF_ID.match(source):
        return _hugging_face(source, cache_dir / "hf")
    raise WeightsError(f"model source '{source}' is none of s3://, gs://, az://, a Hugging Face id (org/name) "
                       "or a local path. To fix: use one of those forms (local paths start with /, ./, ~/ or ${GPUFLEET_HOME}/)")


def _store(scheme: str, rest: str) -> tuple[ObjectStore, str]:
    parts = [p for p in rest.split("/") if p]
    if any(p == ".." for p in parts) or len(parts) < (2 if scheme == "az" else 1):
        raise WeightsError(f"'{scheme}://{rest}' names no bucket{' and container' if scheme == 'az' else ''}. "
                           f"To fix: write {scheme}://{'ACCOUNT/CONTAINER' if scheme == 'az' else 'BUCKET'}/PREFIX")
    if scheme == "s3":
        from orchestrator.replica.weights.s3 import S3Store

        return S3Store(parts[0], "/".join(parts[1:])), "/".join(parts)
    if scheme == "gs":
        from orchestrator.replica.weights.gcs import GcsStore

        return GcsStore(parts[0], "/".join(parts[1:])), "/".join(parts)
    from orchestrator.replica.weights.azure import AzureBlobStore

    return AzureBlobStore(parts[0], parts[1], "/".join(parts[2:])), "/".join(parts)


def sync(store: ObjectStore, directory: Path) -> Path:
    """Make `directory` hold every object of `store`, verified; returns `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    with file_lock(directory / ".lock"):
        objects = store.list()
        if not objects:
            raise WeightsError(f"no objects under the model source (cache {directory}). "
                               "To fix: check the prefix; it must hold config.json and the weights")
        manifest = _read_manifest(directory)
        for obj in objects:
            target = _target(directory, obj.key)
            if manifest.get(obj.key) == _fingerprint(obj) and target.is_file() and target.stat().st_size == obj.size:
                continue
            _download_verified(store, obj, target)
            manifest[obj.key] = _fingerprint(obj)
            _write_manifest(directory, manifest)  # after each object: an interrupted sync keeps what it verified
    return directory


def _fingerprint(obj: RemoteObject) -> str:
    return f"{obj.size}:{obj.checksum.kind}:{obj.checksum.value}" if obj.checksum else f"{obj.size}:size-only"


def _target(directory: Path, key: str) -> Path:
    relative = PurePosixPath(key)
    if relative.is_absolute() or ".." in relative.parts:
        raise WeightsError(f"object key '{key}' escapes the model directory. To fix: remove it from the source")
    path = directory.joinpath(*relative.parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _download_verified(store: ObjectStore, obj: RemoteObject, target: Path) -> None:
    partial = target.with_name(target.name + ".partial")
    for attempt in (1, 2):
        size = partial.stat().st_size if partial.exists() else 0
        if size > obj.size:
            partial.unlink()
            size = 0
        if size < obj.size:
            logger.info("fetching %s: %d of %d bytes (%s)", obj.key, obj.size - size, obj.size,
                        "resuming" if size else "new")
            with open(partial, "ab") as out:
                store.download(obj, out, size)
        problem = _verify(obj, partial)
        if problem is None:
            os.replace(partial, target)
            return
        logger.warning("%s failed verification (%s)%s", obj.key, problem, "; downloading it again" if attempt == 1 else "")
        partial.unlink(missing_ok=True)
    raise WeightsError(f"{obj.key} failed verification twice ({problem}). "
                       "To fix: check the object in the store (re-upload it), then restart the replica")


def _verify(obj: RemoteObject, path: Path) -> str | None:
    actual = path.stat().st_size
    if actual != obj.size:
        return f"size {actual} != {obj.size}"
    if obj.checksum is None:
        logger.warning("%s: the store reports no checksum; only its size was verified", obj.key)
        return None
    digest = obj.checksum.of_file(str(path))
    return None if digest == obj.checksum.value else f"{obj.checksum.kind} {digest} != {obj.checksum.value}"


def _read_manifest(directory: Path) -> dict[str, str]:
    try:
        return json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return {}


def _write_manifest(directory: Path, manifest: dict[str, str]) -> None:
    tmp = directory / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(tmp, directory / MANIFEST)


def _hugging_face(repo_id: str, cache_dir: Path) -> Path:
    """The hub's own snapshot cache: resumable, checked against the hub's hashes; offline: cached only."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(repo_id, cache_dir=str(cache_dir)))
    except LocalEntryNotFoundError as exc:
        raise WeightsError(f"{repo_id} is not in the cache {cache_dir} and the hub cannot be reached. "
                           "To fix: run once online, or use an s3://, gs://, az:// or local source") from exc
    except HfHubHTTPError as exc:
        raise WeightsError(f"cannot fetch {repo_id} from the Hugging Face hub: {exc}. "
                           "To fix: check the id and HF_TOKEN for gated models") from exc
