"""Where each stack keeps its Terraform state.

Every stack's state lives with the provider it manages, so that deploying `hybrid-aws`
needs AWS credentials only: S3 for AWS, GCS for GCP, an Azure storage account for
Azure, a Secret in the site's own cluster for on-prem (Terraform's `kubernetes`
backend), and a local file for pools on this machine. The spec does not name these
places yet; until it does, names derive from the environment (`gpufleet-tfstate-<env>`,
one state file per stack inside it), as docs/stacks.md describes, so each environment
needs one bucket per cloud, created once (the bootstrap step of a deploy). A local
backend keeps the state file in the stack's working directory (`cdktf.out/stacks/<stack>`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cdktn import AzurermBackend, GcsBackend, LocalBackend, S3Backend, TerraformBackend, TerraformStack
from constructs import Construct

from orchestrator.errors import GpufleetError
from stacks.pools import PoolDeclaration


@dataclass(frozen=True)
class Backend:
    """A state backend: its Terraform type and its settings (as the cdktn backend class takes them)."""

    kind: str  # s3 | gcs | azurerm | kubernetes | local
    settings: dict[str, object]


def state_bucket(environment: str) -> str:
    """The default bucket (or resource group) holding an environment's state."""
    return f"gpufleet-tfstate-{environment}"


def azure_storage_account(environment: str) -> str:
    """Azure storage account names are 3-24 lower-case letters and digits, globally unique."""
    return re.sub(r"[^a-z0-9]", "", f"gpufleettfstate{environment}".lower())[:24]


def backend_for(stack: str, provider: str, pools: list[PoolDeclaration]) -> Backend:
    """The state backend of one stack (an environment's pools of one provider)."""
    environment = pools[0].environment
    if provider == "aws":
        return Backend("s3", {
            "bucket": state_bucket(environment), "key": f"gpufleet/{stack}.tfstate",
            "region": pools[0].pool.region, "encrypt": True, "use_lockfile": True,
        })
    if provider == "gcp":
        return Backend("gcs", {"bucket": state_bucket(environment), "prefix": f"gpufleet/{stack}"})
    if provider == "azure":
        return Backend("azurerm", {
            "resource_group_name": state_bucket(environment), "storage_account_name": azure_storage_account(environment),
            "container_name": "tfstate", "key": f"gpufleet/{stack}.tfstate", "use_azuread_auth": True,
        })
    if provider == "onprem":
        return Backend("kubernetes", {"secret_suffix": stack, "config_context": pools[0].cluster, "namespace": "kube-system"})
    return Backend("local", {"path": f"terraform.{stack}.tfstate"})


class KubernetesBackend(TerraformBackend):
    """Terraform's `kubernetes` backend (state in a Secret of the cluster), which cdktn has no class for."""

    def __init__(self, scope: Construct, **settings: object):
        super().__init__(scope, "backend", "kubernetes")
        self._settings = settings

    def _synthesize_attributes(self) -> dict[str, object]:
        return self._settings

    def get_remote_state_data_source(self, scope: Construct, name: str, _from_stack: str) -> object:
        raise GpufleetError("gpufleet stacks do not read each other's state; nothing asks for a kubernetes remote state")


_CLASSES = {"s3": S3Backend, "gcs": GcsBackend, "azurerm": AzurermBackend, "kubernetes": KubernetesBackend, "local": LocalBackend}


def attach_backend(stack: TerraformStack, backend: Backend) -> None:
    """Give the stack its state backend."""
    _CLASSES[backend.kind](stack, **backend.settings)
