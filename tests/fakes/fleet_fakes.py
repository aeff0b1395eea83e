"""Every cloud's fake at once, and the environment variables that point gpufleet at them.

For tests that drive a whole fleet (rebalance across AWS, GCP, Azure and on-prem): moto's
server app for EKS/Auto Scaling, the GKE/Compute fake, the Azure Resource Manager fake over
TLS, and one Kubernetes API fake that every kube context of the kubeconfig reaches (each
pool has its own namespace there, so one fake can stand in for several clusters).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.fakes.aws_fake import AWS_CREDENTIALS, FakeAwsFront, serving
from tests.fakes.azure_fake import FakeResourceManager
from tests.fakes.cloud_fake import self_signed_tls
from tests.fakes.gcp_fake import FakeGoogleCloud
from tests.fakes.kubernetes_fake import FakeKubernetesApi

@dataclass
class CloudFakes:
    aws: FakeAwsFront
    aws_url: str
    gcp: FakeGoogleCloud
    azure: FakeResourceManager
    kube: FakeKubernetesApi
    env: dict[str, str]  # GPUFLEET_* settings and SDK variables that reach the fakes

    def aws_client(self, service: str, region: str):
        import boto3

        return boto3.session.Session().client(service, region_name=region, endpoint_url=self.aws_url)


@contextmanager
def cloud_fakes(directory: Path, contexts: list[str], *, operation_s: float = 0.05) -> Iterator[CloudFakes]:
    """Serve all four fakes for the block; `contexts` are the kube contexts (pool clusters) to configure."""
    aws, gcp = FakeAwsFront(), FakeGoogleCloud(operation_s=operation_s)
    azure, kube = FakeResourceManager(operation_s=operation_s), FakeKubernetesApi()
    tls, certificate = self_signed_tls(directory)
    with ExitStack() as stack:
        aws_url = stack.enter_context(serving(aws))
        gcp_url = stack.enter_context(gcp.serve())
        azure_url = stack.enter_context(azure.serve(tls))
        kube_url = stack.enter_context(kube.serve())
        kubeconfig = directory / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": contexts[0],
            "clusters": [{"name": "fake", "cluster": {"server": kube_url}}],
            "users": [{"name": "fake", "user": {"token": "fake-token"}}],
            "contexts": [{"name": c, "context": {"cluster": "fake", "user": "fake"}} for c in contexts],
        }))
        env = {
            **AWS_CREDENTIALS,
            "REQUESTS_CA_BUNDLE": str(certificate),  # the Azure SDK trusts the fake's certificate
            "GPUFLEET_AWS_ENDPOINT_URL": aws_url,
            "GPUFLEET_GCP_PROJECT": gcp.project,
            "GPUFLEET_GCP_CONTAINER_ENDPOINT": gcp_url,
            "GPUFLEET_GCP_COMPUTE_ENDPOINT": gcp_url,
            "GPUFLEET_AZURE_SUBSCRIPTION_ID": azure.subscription,
            "GPUFLEET_AZURE_ARM_ENDPOINT": azure_url,
            "GPUFLEET_AZURE_ACCESS_TOKEN": "fake-token",
            "GPUFLEET_KUBECONFIG": str(kubeconfig),
            "GPUFLEET_KUBERNETES_IMAGE": "registry.example/gpufleet/vllm@sha256:" + "ab" * 32,
            "GPUFLEET_PROVIDER_POLL_S": "0.01",
            "GPUFLEET_PROVIDER_BACKOFF_S": "0.01",
        }
        yield CloudFakes(aws, aws_url, gcp, azure, kube, env)
