"""Weights fetching: S3 through moto's server, GCS and Azure Blob through their real SDKs against local fakes.

What is real: boto3, google-cloud-storage and azure-storage-blob clients, moto's S3, the
resume and checksum logic. What is fake: the GCS and Azure services (tests/fakes), which
check no credentials. Hugging Face is tested offline only (no network here).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from orchestrator.providers.local.processes import free_port
from orchestrator.replica.weights import WeightsError, fetch_weights, local_source, sync
from orchestrator.replica.weights.s3 import S3Store
from tests.fakes.azure_blob import FakeAzureBlob
from tests.fakes.gcs_storage import FakeGcs

WEIGHTS = os.urandom(5 * 1024 * 1024 + 123)
CONFIG = b'{"architectures": ["LlamaForCausalLM"]}'
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def s3_url():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_url, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_url)
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    client = boto3.client("s3")
    bucket = f"models-{os.urandom(4).hex()}"
    client.create_bucket(Bucket=bucket)
    client.put_object(Bucket=bucket, Key="tiny/config.json", Body=CONFIG)
    client.put_object(Bucket=bucket, Key="tiny/model.safetensors", Body=WEIGHTS)
    return client, bucket


def ranges_seen(client) -> list[str]:
    """Range headers of every GetObject the client sends from now on."""
    seen: list[str] = []
    client.meta.events.register("before-send.s3.GetObject",
                                lambda request, **_: seen.append(request.headers["Range"].decode()))
    return seen


def test_s3_fetch_lands_verified_files_in_the_cache(s3, tmp_path):
    _, bucket = s3
    path = fetch_weights(f"s3://{bucket}/tiny", tmp_path / "cache", tmp_path)
    assert path == tmp_path / "cache" / "s3" / bucket / "tiny"
    assert (path / "model.safetensors").read_bytes() == WEIGHTS
    assert (path / "config.json").read_bytes() == CONFIG
    assert not list(path.glob("*.partial"))


def test_s3_fetch_resumes_a_partial_download_from_its_size(s3, tmp_path):
    client, bucket = s3
    target = tmp_path / "cache" / "s3" / bucket / "tiny"
    target.mkdir(parents=True)
    (target / "model.safetensors.partial").write_bytes(WEIGHTS[:3 * MIB])
    store = S3Store(bucket, "tiny", client)
    seen = ranges_seen(client)
    sync(store, target)
    assert (target / "model.safetensors").read_bytes() == WEIGHTS
    assert f"bytes={3 * MIB}-" in seen


def test_s3_multipart_etag_is_verified_with_the_part_size(s3, tmp_path):
    client, bucket = s3
    upload = client.create_multipart_upload(Bucket=bucket, Key="big/model.safetensors")
    parts = []
    for number, start in enumerate(range(0, len(WEIGHTS), 5 * MIB), start=1):
        part = client.upload_part(Bucket=bucket, Key="big/model.safetensors", UploadId=upload["UploadId"],
                                  PartNumber=number, Body=WEIGHTS[start:start + 5 * MIB])
        parts.append({"PartNumber": number, "ETag": part["ETag"]})
    client.complete_multipart_upload(Bucket=bucket, Key="big/model.safetensors", UploadId=upload["UploadId"],
                                     MultipartUpload={"Parts": parts})
    listed = S3Store(bucket, "big", client).list()
    assert listed[0].checksum.kind == "s3-multipart-md5" and listed[0].checksum.part_size == 5 * MIB
    path = fetch_weights(f"s3://{bucket}/big", tmp_path / "cache", tmp_path)
    assert hashlib.sha256((path / "model.safetensors").read_bytes()).digest() == hashlib.sha256(WEIGHTS).digest()


def test_a_corrupt_partial_is_discarded_and_downloaded_again(s3, tmp_path):
    _, bucket = s3
    target = tmp_path / "cache" / "s3" / bucket / "tiny"
    target.mkdir(parents=True)
    (target / "model.safetensors.partial").write_bytes(b"\0" * (3 * MIB))  # right size prefix, wrong bytes
    path = fetch_weights(f"s3://{bucket}/tiny", tmp_path / "cache", tmp_path)
    assert (path / "model.safetensors").read_bytes() == WEIGHTS


def test_a_warm_cache_is_not_downloaded_again(s3, tmp_path):
    client, bucket = s3
    fetch_weights(f"s3://{bucket}/tiny", tmp_path / "cache", tmp_path)
    seen = ranges_seen(client)
    store = S3Store(bucket, "tiny", client)
    sync(store, tmp_path / "cache" / "s3" / bucket / "tiny")
    assert seen == []


def test_an_empty_prefix_is_an_error_naming_the_fix(s3, tmp_path):
    _, bucket = s3
    with pytest.raises(WeightsError, match="no objects under the model source"):
        fetch_weights(f"s3://{bucket}/absent", tmp_path / "cache", tmp_path)


def test_gcs_fetch_through_the_real_client_resumes_and_checks_md5_or_crc32c(monkeypatch, tmp_path):
    fake = FakeGcs()
    fake.put("models", "tiny/config.json", CONFIG)
    fake.put("models", "tiny/model.safetensors", WEIGHTS, composite=True)  # no md5: crc32c is checked
    target = tmp_path / "cache" / "gs" / "models" / "tiny"
    target.mkdir(parents=True)
    (target / "model.safetensors.partial").write_bytes(WEIGHTS[:MIB])
    with fake.serve() as url:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
        path = fetch_weights("gs://models/tiny", tmp_path / "cache", tmp_path)
    assert (path / "model.safetensors").read_bytes() == WEIGHTS
    assert (path / "config.json").read_bytes() == CONFIG
    media = [r for r in fake.requests if r.path.endswith("model.safetensors") and r.path.startswith("/download")]
    assert media[0].headers["Range"] == f"bytes={MIB}-"


def test_azure_fetch_through_the_real_client_resumes_and_checks_content_md5(monkeypatch, tmp_path):
    fake = FakeAzureBlob()
    fake.put("weights", "tiny/config.json", CONFIG)
    fake.put("weights", "tiny/model.safetensors", WEIGHTS)
    target = tmp_path / "cache" / "az" / "devaccount" / "weights" / "tiny"
    target.mkdir(parents=True)
    (target / "model.safetensors.partial").write_bytes(WEIGHTS[:2 * MIB])
    with fake.serve() as url:
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", fake.connection_string(url))
        path = fetch_weights("az://devaccount/weights/tiny", tmp_path / "cache", tmp_path)
    assert (path / "model.safetensors").read_bytes() == WEIGHTS
    ranged = [r.headers.get("X-Ms-Range", "") for r in fake.requests if r.path.endswith("model.safetensors")]
    assert ranged[0].startswith(f"bytes={2 * MIB}-")


def test_azure_blob_served_with_a_wrong_md5_fails_after_one_retry(monkeypatch, tmp_path):
    fake = FakeAzureBlob()
    fake.put("weights", "tiny/model.safetensors", WEIGHTS)
    fake.corrupt("weights", "tiny/model.safetensors")
    with fake.serve() as url:
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", fake.connection_string(url))
        with pytest.raises(WeightsError, match="failed verification twice"):
            fetch_weights("az://devaccount/weights/tiny", tmp_path / "cache", tmp_path)
    downloads = [r for r in fake.requests if r.path.endswith("model.safetensors")]
    assert len(downloads) == 2
    assert not list((tmp_path / "cache").rglob("model.safetensors*"))


def test_local_sources_are_used_in_place(tmp_path):
    (tmp_path / "models" / "m").mkdir(parents=True)
    assert fetch_weights("${GPUFLEET_HOME}/models/m", tmp_path / "cache", tmp_path) == tmp_path / "models" / "m"
    assert fetch_weights(str(tmp_path / "models" / "m"), tmp_path / "cache", tmp_path) == tmp_path / "models" / "m"
    assert local_source("org/model", tmp_path) is None
    assert local_source("~/m", tmp_path) == Path.home() / "m"
    with pytest.raises(WeightsError, match="does not exist"):
        fetch_weights("./no/such/dir", tmp_path / "cache", tmp_path)


def test_a_hugging_face_id_offline_and_uncached_says_how_to_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsError, match="not in the cache .* run once online"):
        fetch_weights("gpufleet/not-cached", tmp_path / "cache", tmp_path)


@pytest.mark.parametrize("source", ["ftp://x/y", "s3://", "az://account-only", "s3://b/../escape", "just-a-name"])
def test_sources_that_name_nothing_fetchable_are_errors(source, tmp_path):
    with pytest.raises(WeightsError, match="To fix"):
        fetch_weights(source, tmp_path / "cache", tmp_path)
