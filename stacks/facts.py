"""What one pool *is* on its provider, whichever engine declares it: the facts both back ends render.

`stacks.pools` resolves what all providers share (tags, node labels, taints); this module
adds each provider's own: the cloud-side names, the node shape (machine, accelerators,
root volume), the hardening (encryption, IMDSv2, private nodes), and which node counts
belong to `rebalance`. The CDK Terrain constructs (`stacks/aws.py`, ...) and the Pulumi
programs (`stacks/pulumi/`) only spell these facts in their engine's vocabulary, so the
two cannot drift: a new label, a renamed node group or another volume size changes here,
once. `tests/stacks/pulumi/test_parity.py` compares the two renderings field by field.

Node counts have one owner, `rebalance`, which scales every cloud pool between the spec's
bounds (docs/providers.md, "Who owns what"). `OWNED_BY_REBALANCE` names, per provider, every
count it writes, so the stacks ignore exactly those (`lifecycle.ignore_changes`,
`ignoreChanges`) and a deploy after a rebalance changes nothing: the current count (EKS
desired size, GKE node count, AKS count), AKS's autoscaler floor (`minCount`, which rebalance
sets to the planned count because AKS takes no manual count while its autoscaler is on), and
GKE's initial count (not written by rebalance, but changing it would recreate the pool).
GKE pools get no cluster autoscaler: GKE's would remove nodes rebalance sized (those it adds
ahead of the replicas' pods look idle) down to its own minimum, which a resize does not move.
`tests/stacks/test_controllers.py` records what the providers send and compares.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from orchestrator.errors import InputError
from orchestrator.providers.azure.names import aks_pool_name
from stacks.pools import LABEL_PREFIX, PoolDeclaration, Taint, bounded_name, gpu_resource, gpu_taint

OWNED_BY_REBALANCE = {"aws": ("current",), "gcp": ("initial", "current"), "azure": ("current", "floor")}


@dataclass(frozen=True)
class Sizing:
    """Node-count bounds from the spec; pools start at `initial` and rebalance owns the count after."""

    min_nodes: int
    max_nodes: int

    @property
    def initial(self) -> int:
        return self.min_nodes


# --- AWS: an EKS managed node group, its launch template and its node role ------------------

AMI_TYPE = "AL2023_x86_64_NVIDIA"  # EKS-optimized Amazon Linux 2023 with the NVIDIA driver and toolkit
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryPullOnly")
ROOT_VOLUME_GB = 200  # the image, plus model weights cached on the node
CAPACITY_TYPES = {"on_demand": "ON_DEMAND", "reserved": "ON_DEMAND", "spot": "SPOT"}  # reserved: billing, not a market


@dataclass(frozen=True)
class RootVolume:
    device: str
    size_gb: int
    type: str
    encrypted: bool
    delete_on_termination: bool


@dataclass(frozen=True)
class AwsNodeGroup:
    """An EKS node group; the launch template exists for what a node group cannot enforce alone
    (encrypted root volume, IMDSv2 only: a pod must not read the node role's credentials)."""

    pool: PoolDeclaration
    name: str
    cluster: str
    region: str
    ami_type: str
    capacity_type: str
    instance_types: tuple[str, ...]
    sizing: Sizing
    max_unavailable: int
    template_name: str
    template_description: str
    root_volume: RootVolume
    imds_tokens: str  # "required": IMDSv2 only
    imds_hop_limit: int  # 2: pods on the node still reach it
    tagged_kinds: tuple[str, ...]  # what the template's tag specifications tag
    role_name_prefix: str
    role_description: str
    role_trust_policy: str  # JSON: only EC2 (the pool's nodes) may assume the node role
    role_policy_arns: tuple[str, ...]  # just what a worker node needs: join, VPC CNI, pull images


def node_role_policy() -> str:
    """Trust policy: only EC2 instances (the pool's nodes) may assume the node role."""
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    })


def aws_node_group(pool: PoolDeclaration) -> AwsNodeGroup:
    spec = pool.pool
    return AwsNodeGroup(
        pool=pool, name=pool.name, cluster=pool.cluster, region=spec.region, ami_type=AMI_TYPE,
        capacity_type=CAPACITY_TYPES[spec.capacity], instance_types=(spec.instance_type or "",),
        sizing=Sizing(spec.min_nodes, spec.max_nodes), max_unavailable=1,
        template_name=f"gpufleet-{pool.environment}-{pool.name}",
        template_description=f"gpufleet GPU pool {pool.name} ({pool.environment})",
        root_volume=RootVolume("/dev/xvda", ROOT_VOLUME_GB, "gp3", encrypted=True, delete_on_termination=True),
        imds_tokens="required", imds_hop_limit=2, tagged_kinds=("instance", "volume"),
        role_name_prefix="gpufleet-node-", role_description=f"Nodes of gpufleet GPU pool {pool.name} ({pool.environment})",
        role_trust_policy=node_role_policy(), role_policy_arns=tuple(f"arn:aws:iam::aws:policy/{p}" for p in NODE_POLICIES),
    )


# --- GCP: a GKE node pool with guest accelerators and a GKE-installed driver ----------------

ACCELERATORS = {  # canonical GPU -> GKE accelerator type
    "T4": "nvidia-tesla-t4", "L4": "nvidia-l4", "V100": "nvidia-tesla-v100",
    "A100": "nvidia-tesla-a100", "A100-80GB": "nvidia-a100-80gb", "H100": "nvidia-h100-80gb",
    "H200": "nvidia-h200-141gb", "B200": "nvidia-b200",
}
MEGA_ACCELERATOR = "nvidia-h100-mega-80gb"  # a3-megagpu: the same H100 with more network
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"  # access is IAM's job, not scopes'


@dataclass(frozen=True)
class GcpNodePool:
    """A GKE node pool in a regional cluster, pinned to `zone` when the spec names one, sized by
    rebalance alone (no cluster autoscaler: see the module docstring). Nodes are
    shielded, private (no public IPs) and expose only the GKE metadata server (Workload
    Identity, never the node's service account). GKE taints GPU nodes itself, so gpufleet's
    GPU taint is not among `taints`."""

    pool: PoolDeclaration
    name: str
    cluster: str
    location: str
    node_locations: tuple[str, ...]
    sizing: Sizing
    auto_repair: bool
    auto_upgrade: bool
    private_nodes: bool
    machine_type: str
    spot: bool
    accelerator_type: str
    accelerator_count: int
    driver_version: str
    labels: dict[str, str]
    taints: tuple[Taint, ...]
    resource_labels: dict[str, str]
    secure_boot: bool
    integrity_monitoring: bool
    workload_metadata_mode: str
    metadata: dict[str, str]
    oauth_scopes: tuple[str, ...]


def accelerator_type(instance_type: str, gpu: str) -> str:
    """The GKE accelerator type of a machine type's GPU."""
    if instance_type.startswith("a3-megagpu"):
        return MEGA_ACCELERATOR
    if gpu not in ACCELERATORS:
        raise InputError(f"no GKE accelerator type known for GPU {gpu} ({instance_type}); known: {', '.join(ACCELERATORS)}. To fix: add it to stacks/facts.py ACCELERATORS")
    return ACCELERATORS[gpu]


def gcp_labels(tags: dict[str, str]) -> dict[str, str]:
    """Tags as GCP resource labels: lower-case letters, digits, '_' and '-', at most 63 characters."""
    def clean(text: str) -> str:
        return re.sub(r"[^a-z0-9_-]", "_", text.lower())[:63]

    return {clean(k): clean(v) for k, v in tags.items()}


def gcp_node_pool(pool: PoolDeclaration) -> GcpNodePool:
    spec = pool.pool
    spot = spec.capacity == "spot"
    return GcpNodePool(
        pool=pool, name=pool.name, cluster=pool.cluster, location=spec.region,
        node_locations=(spec.zone,) if spec.zone else (), sizing=Sizing(spec.min_nodes, spec.max_nodes),
        auto_repair=True, auto_upgrade=True, private_nodes=True,
        machine_type=spec.instance_type or "", spot=spot,
        accelerator_type=accelerator_type(spec.instance_type or "", pool.gpu), accelerator_count=pool.gpus_per_node,
        driver_version="LATEST", labels=pool.labels, taints=tuple(t for t in pool.taints if t != gpu_taint(pool.gpu)),
        resource_labels=gcp_labels(pool.tags), secure_boot=True, integrity_monitoring=True,
        workload_metadata_mode="GKE_METADATA", metadata={"disable-legacy-endpoints": "true"},
        oauth_scopes=(CLOUD_PLATFORM_SCOPE,),
    )


# --- Azure: an AKS user node pool of a GPU VM size, AKS installing the driver ---------------

SPOT_LABEL = ("kubernetes.azure.com/scalesetpriority", "spot")
SPOT_MAX_PRICE = -1  # pay up to the on-demand price; never evicted for price


@dataclass(frozen=True)
class AzureNodePool:
    """An AKS node pool. Spot: eviction by deletion (a deallocated GPU VM still counts against
    quota), max price -1, and the spot label and taint AKS adds itself, declared or every plan
    shows a diff. Encryption at host: temp disks and caches (where weights land) are encrypted."""

    pool: PoolDeclaration
    name: str  # at most 12 lower-case alphanumerics
    cluster: str
    resource_group: str
    vm_size: str
    mode: str
    gpu_driver: str
    host_encryption: bool
    sizing: Sizing
    spot: bool
    eviction_policy: str | None
    spot_max_price: float | None
    zones: tuple[str, ...]
    labels: dict[str, str]
    taints: tuple[Taint, ...]
    tags: dict[str, str]

    @property
    def priority(self) -> str:
        return "Spot" if self.spot else "Regular"


def resource_group(cluster: str) -> str:
    """The resource group holding an AKS cluster (Azure's `rg-<name>` convention, until the spec says)."""
    return f"rg-{cluster}"


def azure_node_pool(pool: PoolDeclaration) -> AzureNodePool:
    spec = pool.pool
    spot = spec.capacity == "spot"
    return AzureNodePool(
        pool=pool, name=aks_pool_name(pool.name), cluster=pool.cluster, resource_group=resource_group(pool.cluster),
        vm_size=spec.instance_type or "", mode="User", gpu_driver="Install", host_encryption=True,
        sizing=Sizing(spec.min_nodes, spec.max_nodes), spot=spot,
        eviction_policy="Delete" if spot else None, spot_max_price=SPOT_MAX_PRICE if spot else None,
        zones=(spec.zone,) if spec.zone else (),
        labels={**pool.labels, **(dict([SPOT_LABEL]) if spot else {})},
        taints=(*pool.taints, Taint(*SPOT_LABEL, "NoSchedule")) if spot else pool.taints,
        tags=pool.tags,
    )


# --- On-prem: the objects that make a site's nodes a gpufleet pool --------------------------

DEVICE_PLUGIN = {
    "repository": "https://nvidia.github.io/k8s-device-plugin",
    "chart": "nvidia-device-plugin",
    "version": "0.17.1",
}
PRIORITIES = {  # name suffix -> (value, preemption policy, what for)
    "serving": (100_000, "PreemptLowerPriority", "gpufleet replicas carrying traffic"),
    "standby": (10_000, "Never", "gpufleet replicas warming up during a rebalance; never preempts"),
}


@dataclass(frozen=True)
class PriorityClass:
    kind: str  # serving | standby
    name: str
    value: int
    preemption_policy: str
    description: str


@dataclass(frozen=True)
class OnpremPool:
    """A namespace for the pool's replicas, a quota capping their GPUs at the pool's size
    (max_nodes x gpus_per_node: the site's node-group max), priority classes (cluster-wide,
    so named after the pool) and the NVIDIA device plugin on the pool's nodes only."""

    pool: PoolDeclaration
    cluster: str
    namespace: str
    object_labels: dict[str, str]
    quota_name: str
    quota_hard: dict[str, str]
    priority_classes: tuple[PriorityClass, ...]
    device_plugin_name: str
    device_plugin_values: str  # Helm values, JSON (which is YAML)

    @property
    def node_selector(self) -> str:
        return f"{LABEL_PREFIX}/pool={self.pool.name}"

    @property
    def serving_class(self) -> str:
        return next(p.name for p in self.priority_classes if p.kind == "serving")


def namespace(pool: PoolDeclaration) -> str:
    return bounded_name(f"gpufleet-{pool.name}", 63)


def priority_class(pool: PoolDeclaration, kind: str) -> str:
    return bounded_name(f"gpufleet-{pool.name}-{kind}", 253)


def quota_hard(pool: PoolDeclaration) -> dict[str, str]:
    """The most GPUs the pool's pods may request: all GPUs of all its nodes."""
    return {f"requests.{gpu_resource(pool.gpu)}": str(pool.pool.max_nodes * pool.gpus_per_node)}


def device_plugin_values(pool: PoolDeclaration) -> str:
    """Helm values (JSON is YAML): run on the pool's nodes, tolerating their taints."""
    return json.dumps({
        "nodeSelector": {f"{LABEL_PREFIX}/pool": pool.name},
        "tolerations": [{"key": t.key, "operator": "Equal", "value": t.value, "effect": t.effect} for t in pool.taints],
        "priorityClassName": "system-node-critical",
    }, sort_keys=True)


def onprem_pool(pool: PoolDeclaration) -> OnpremPool:
    return OnpremPool(
        pool=pool, cluster=pool.cluster, namespace=namespace(pool),
        object_labels={f"{LABEL_PREFIX}/environment": pool.environment, f"{LABEL_PREFIX}/pool": pool.name},
        quota_name="gpu", quota_hard=quota_hard(pool),
        priority_classes=tuple(PriorityClass(kind, priority_class(pool, kind), value, preemption, description)
                               for kind, (value, preemption, description) in PRIORITIES.items()),
        device_plugin_name="nvidia-device-plugin", device_plugin_values=device_plugin_values(pool),
    )


# --- Workload identity: who the replicas are to the store of their weights -----------------
#
# The spec's `pools[].identity` names the cloud identity a pool's replicas act as; rebalance
# annotates their ServiceAccount with it (orchestrator/providers/kubernetes/identity.py). The
# stacks make that identity usable: on EKS the IAM role the annotation names, trusting the
# cluster's OIDC provider for exactly those ServiceAccounts (IRSA) and reading the spec's s3://
# weights; on GKE the Workload Identity binding that lets those ServiceAccounts act as the
# Google service account, which may read the spec's gs:// buckets. On AKS the spec gives only
# the managed identity's client ID, which does not locate it (azurerm finds identities by name
# and resource group), so its federated credential stays a set-up step (docs/stacks.md).

WEB_IDENTITY_AUDIENCE = "sts.amazonaws.com"
_ROLE_ARN = re.compile(r"^arn:(?P<partition>aws[a-z-]*):iam::(?P<account>[0-9]{12}):role(?P<path>/(?:.*/)?)(?P<name>[^/]+)$")
_STORE = re.compile(r"^(?P<scheme>s3|gs)://(?P<bucket>[^/]+)/?(?P<prefix>.*)$")


def service_account_subject(pool: PoolDeclaration) -> tuple[str, str]:
    """(namespace, ServiceAccount) the pool's replicas run as: what rebalance and the manifests create."""
    from orchestrator.providers.kubernetes.identity import SERVICE_ACCOUNT
    from orchestrator.providers.kubernetes.models import namespace as replica_namespace

    return replica_namespace(pool.name), SERVICE_ACCOUNT


def stores(sources: tuple[str, ...], scheme: str) -> tuple[tuple[str, str], ...]:
    """(bucket, key prefix) of every model source in `scheme` (s3, gs), sorted, once each."""
    found = {(m["bucket"], m["prefix"]) for s in sources if (m := _STORE.match(s)) and m["scheme"] == scheme}
    return tuple(sorted(found))


@dataclass(frozen=True)
class IrsaSubject:
    cluster: str  # the EKS cluster whose OIDC provider vouches for the ServiceAccount
    region: str
    pool: str
    subject: str  # system:serviceaccount:<namespace>:<name>


@dataclass(frozen=True)
class AwsWorkloadRole:
    """The IAM role of `identity.aws_role_arn`, assumable through IRSA by the ServiceAccounts of the
    pools naming it (and no one else), allowed to read the spec's s3:// weights (and nothing else)."""

    key: str  # construct id: weights-role-<name>
    arn: str
    name: str
    path: str
    description: str
    subjects: tuple[IrsaSubject, ...]
    read_policy: str | None  # JSON; None when no model is in S3
    tags: dict[str, str]

    @property
    def clusters(self) -> tuple[tuple[str, str], ...]:
        """(cluster, region) of the subjects, once each."""
        return tuple(dict.fromkeys((s.cluster, s.region) for s in self.subjects))


def s3_read_policy(buckets: tuple[tuple[str, str], ...], partition: str) -> str | None:
    """List the weights' prefixes and get their objects: all a replica's fetch does."""
    if not buckets:
        return None
    statements = [
        {"Sid": "ListWeights", "Effect": "Allow", "Action": ["s3:ListBucket"],
         "Resource": sorted({f"arn:{partition}:s3:::{b}" for b, _ in buckets}),
         "Condition": {"StringLike": {"s3:prefix": sorted({v for _, p in buckets for v in (p.rstrip("/"), f"{p}*") if v})}}},
        {"Sid": "GetWeights", "Effect": "Allow", "Action": ["s3:GetObject"],
         "Resource": sorted(f"arn:{partition}:s3:::{b}/{p}*" for b, p in buckets)},
    ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def aws_workload_roles(pools: list[PoolDeclaration], sources: tuple[str, ...]) -> list[AwsWorkloadRole]:
    """One role per distinct `identity.aws_role_arn` of the pools, in the order first named."""
    by_arn: dict[str, list[PoolDeclaration]] = {}
    for pool in pools:
        if pool.pool.identity is not None and pool.pool.identity.aws_role_arn:
            by_arn.setdefault(pool.pool.identity.aws_role_arn, []).append(pool)
    roles = []
    for arn, named in by_arn.items():
        match = _ROLE_ARN.match(arn)
        if match is None:
            raise InputError(f"identity.aws_role_arn '{arn}' is not an IAM role ARN. To fix: arn:aws:iam::<account>:role/<name>")
        subjects = tuple(IrsaSubject(p.cluster, p.pool.region, p.name, "system:serviceaccount:{}:{}".format(*service_account_subject(p)))
                         for p in named)
        roles.append(AwsWorkloadRole(
            key=f"weights-role-{match['name']}", arn=arn, name=match["name"], path=match["path"],
            description=f"gpufleet replicas of {', '.join(p.name for p in named)} ({named[0].environment}): read model weights",
            subjects=subjects, read_policy=s3_read_policy(stores(sources, "s3"), match["partition"]),
            tags={**named[0].tags, "pool": ",".join(p.name for p in named)},
        ))
    return roles


@dataclass(frozen=True)
class GcpWorkloadBinding:
    """Workload Identity for one pool: its replicas' ServiceAccount may act as `service_account`
    (roles/iam.workloadIdentityUser on it, for `<cluster project>.svc.id.goog[<namespace>/<name>]`)."""

    pool: PoolDeclaration
    service_account: str  # e-mail
    service_account_id: str  # projects/<project>/serviceAccounts/<e-mail>
    role: str
    namespace: str
    kubernetes_service_account: str


def gcp_workload_binding(pool: PoolDeclaration) -> GcpWorkloadBinding | None:
    email = pool.pool.identity.gcp_service_account if pool.pool.identity is not None else None
    if not email:
        return None
    project = email.split("@", 1)[1].removesuffix(".iam.gserviceaccount.com")
    ns, name = service_account_subject(pool)
    return GcpWorkloadBinding(pool, email, f"projects/{project}/serviceAccounts/{email}", "roles/iam.workloadIdentityUser", ns, name)


@dataclass(frozen=True)
class GcsReadGrant:
    """The Google service account may read one bucket of the spec's gs:// weights."""

    key: str  # construct id
    bucket: str
    role: str
    member: str


def gcs_read_grants(pools: list[PoolDeclaration], sources: tuple[str, ...]) -> list[GcsReadGrant]:
    emails = dict.fromkeys(b.service_account for p in pools if (b := gcp_workload_binding(p)))
    buckets = dict.fromkeys(b for b, _ in stores(sources, "gs"))
    return [GcsReadGrant(bounded_name(f"weights-read-{bucket}-{email.split('@')[0]}", 80), bucket,
                         "roles/storage.objectViewer", f"serviceAccount:{email}")
            for email in emails for bucket in buckets]
