"""The state backends of `stacks.state`, attached to a CDK Terrain stack.

`stacks.state` decides where each stack keeps its state (and checks the names); this module
only spells that as cdktn's backend constructs, adding the `kubernetes` backend (state in a
Secret of the site's cluster, for on-prem stacks), which cdktn has no class for.
"""

from __future__ import annotations

from cdktn import AzurermBackend, GcsBackend, LocalBackend, S3Backend, TerraformBackend, TerraformStack
from constructs import Construct

from orchestrator.errors import GpufleetError
from stacks.state import Backend


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
