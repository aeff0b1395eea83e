"""Where each stack keeps its Terraform state, and whether those names are ones the clouds accept.

Every stack's state lives with the provider it manages, so that deploying `hybrid-aws`
needs AWS credentials only: S3 for AWS, GCS for GCP, an Azure storage account for Azure,
a Secret in the site's own cluster for on-prem (Terraform's `kubernetes` backend), and a
local file for pools on this machine. The spec's `stacks.state` names the buckets; a name
it leaves out derives from the environment and the organisation's `prefix`
(`<prefix>-gpufleet-tfstate-<env>`), one state file per stack inside it. Bucket and
storage account names are global to each cloud, so two organisations without a prefix
would collide: the prefix is how they don't.

`local=True` gives every stack a local backend instead (`terraform.<stack>.tfstate` in the
stack's working directory), to try `cdktn synth`/`diff` with no cloud account.

The clouds' naming rules are checked here, before anything is synthesized, so a name S3 or
Azure would refuse at `terraform init` is a located spec error now. Engine-free: no jsii.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from orchestrator.errors import SpecIssue
from orchestrator.spec.models import StateBackend
from stacks.pools import PoolDeclaration

AT = "stacks.state"
AZURE_CONTAINER = "tfstate"
_S3 = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_S3_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_S3_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")
_GCS = re.compile(r"^[a-z0-9][a-z0-9._-]*[a-z0-9]$")
_STORAGE_ACCOUNT = re.compile(r"^[a-z0-9]{3,24}$")
_CONTAINER = re.compile(r"^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$")
_RESOURCE_GROUP = re.compile(r"^[-\w.()]{0,89}[-\w()]$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]+$")


@dataclass(frozen=True)
class Backend:
    """A state backend: its Terraform type and its settings (as the cdktn backend class takes them)."""

    kind: str  # s3 | gcs | azurerm | kubernetes | local
    settings: dict[str, object]


def _ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def s3_bucket_problem(name: str) -> str | None:
    """Why S3 would refuse `name` as a general purpose bucket name, or None."""
    if not _S3.match(name):
        return "S3 bucket names are 3-63 lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit"
    if ".." in name or _ip(name):
        return "S3 bucket names have no two adjacent dots and are not IP addresses"
    if name.startswith(_S3_PREFIXES) or name.endswith(_S3_SUFFIXES):
        return f"S3 reserves the prefixes {', '.join(_S3_PREFIXES)} and the suffixes {', '.join(_S3_SUFFIXES)}"
    return None


def gcs_bucket_problem(name: str) -> str | None:
    """Why Cloud Storage would refuse `name` as a bucket name, or None."""
    parts = name.split(".")
    if not _GCS.match(name) or not 3 <= len(name) <= (222 if len(parts) > 1 else 63) or any(not 1 <= len(p) <= 63 for p in parts):
        return ("GCS bucket names are 3-63 lower-case letters, digits, '-', '_' and '.', starting and ending with a letter "
                "or digit (up to 222 with dots, each dot-separated part at most 63)")
    if _ip(name) or name.startswith("goog") or re.search(r"g[o0][o0]g[l1]e", name):
        return "GCS bucket names are not IP addresses, do not start with 'goog' and do not contain 'google' or look-alikes"
    return None


def storage_account_problem(name: str) -> str | None:
    if not _STORAGE_ACCOUNT.match(name):
        return "Azure storage account names are 3-24 lower-case letters and digits"
    return None


def container_problem(name: str) -> str | None:
    if not _CONTAINER.match(name):
        return ("Azure blob container names are 3-63 lower-case letters, digits and hyphens, starting with a letter or "
                "digit, each hyphen between letters or digits")
    return None


def resource_group_problem(name: str) -> str | None:
    if not _RESOURCE_GROUP.match(name):
        return ("Azure resource group names are 1-90 letters, digits, '_', '-', '.', '(' and ')', not ending with '.'")
    return None


def region_problem(name: str) -> str | None:
    if not _REGION.match(name):
        return "an AWS region is like us-east-1 or eu-central-1"
    return None


@dataclass(frozen=True)
class StateNames:
    """The state backends' names for one environment: the spec's, else derived."""

    aws_bucket: str
    aws_region: str | None
    gcp_bucket: str
    azure_resource_group: str
    azure_storage_account: str
    azure_container: str

    @classmethod
    def of(cls, state: StateBackend, environment: str) -> StateNames:
        prefix = f"{state.prefix}-" if state.prefix else ""
        bucket = f"{prefix}gpufleet-tfstate-{environment}"
        account = re.sub(r"[^a-z0-9]", "", (f"{state.prefix}gpufleet{environment}" if state.prefix
                                            else f"gpufleettfstate{environment}").lower())
        return cls(
            aws_bucket=state.aws_bucket or bucket, aws_region=state.aws_region, gcp_bucket=state.gcp_bucket or bucket,
            azure_resource_group=state.azure_resource_group or bucket,
            azure_storage_account=state.azure_storage_account or account,
            azure_container=state.azure_container or AZURE_CONTAINER,
        )


# provider -> (field, its rule); a provider's names are checked where the environment has its pools or the spec sets them
_RULES = {
    "aws": (("aws_bucket", s3_bucket_problem), ("aws_region", region_problem)),
    "gcp": (("gcp_bucket", gcs_bucket_problem),),
    "azure": (("azure_resource_group", resource_group_problem), ("azure_storage_account", storage_account_problem),
              ("azure_container", container_problem)),
}


def state_issues(state: StateBackend, environment: str, providers: set[str]) -> list[SpecIssue]:
    """Every state backend name a cloud would refuse, located at the field that sets it (or would)."""
    names = StateNames.of(state, environment)
    issues = []
    for provider, rules in _RULES.items():
        for field, problem in rules:
            value, given = getattr(names, field), getattr(state, field)
            if value is None or (given is None and provider not in providers):
                continue
            if (why := problem(value)) is not None:
                how = "" if given is not None else (f" (derived from the environment{' and prefix' if state.prefix else ''}; "
                                                    f"set {AT}.{field}, or change {AT}.prefix)")
                issues.append(SpecIssue(f"{AT}.{field}", f"'{value}' is not allowed{how}: {why}"))
    return issues


def local_backend(stack: str) -> Backend:
    return Backend("local", {"path": f"terraform.{stack}.tfstate"})


def backend_for(stack: str, provider: str, pools: list[PoolDeclaration], state: StateBackend, *, local: bool = False) -> Backend:
    """The state backend of one stack (an environment's pools of one provider)."""
    if local:
        return local_backend(stack)
    names = StateNames.of(state, pools[0].environment)
    if provider == "aws":
        return Backend("s3", {
            "bucket": names.aws_bucket, "key": f"gpufleet/{stack}.tfstate",
            "region": names.aws_region or pools[0].pool.region, "encrypt": True, "use_lockfile": True,
        })
    if provider == "gcp":
        return Backend("gcs", {"bucket": names.gcp_bucket, "prefix": f"gpufleet/{stack}"})
    if provider == "azure":
        return Backend("azurerm", {
            "resource_group_name": names.azure_resource_group, "storage_account_name": names.azure_storage_account,
            "container_name": names.azure_container, "key": f"gpufleet/{stack}.tfstate", "use_azuread_auth": True,
        })
    if provider == "onprem":
        return Backend("kubernetes", {"secret_suffix": stack, "config_context": pools[0].cluster, "namespace": "kube-system"})
    return local_backend(stack)
