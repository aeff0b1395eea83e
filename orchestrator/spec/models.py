"""The fleet spec: the one document every part of gpufleet reads.

Typed with pydantic and strict (unknown keys are errors, so a typo never silently
drops a setting). Checks here need nothing but the document itself; checks against
the catalogs (instance types, regions, GPU memory, latency) live in
`orchestrator.inputs`, which resolves a spec into what the planner weighs.
"""

from __future__ import annotations

import ipaddress
import math
import re
from typing import Annotated, Literal

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, ValidationError,
                      ValidatorFunctionWrapHandler, field_validator, model_validator)
from pydantic_core import PydanticCustomError

Provider = Literal["aws", "gcp", "azure", "onprem", "local"]
Capacity = Literal["on_demand", "spot", "reserved", "owned"]
FailureDomain = Literal["provider", "region", "zone", "pool"]
Dtype = Literal["bf16", "fp16", "fp8", "int8", "int4"]

NAME_PATTERN = r"^[a-z0-9]([a-z0-9._-]*[a-z0-9])?$"
"""Pool, model and environment names: safe as Kubernetes names and as a directory name (no `..`, no `/`)."""
Name = Annotated[
    str,
    Field(min_length=1, max_length=63, pattern=NAME_PATTERN,
          description="Lower-case letters, digits, '.', '_' and '-' (a Kubernetes-safe name)."),
]
CLOUDS = ("aws", "gcp", "azure")
MAX_EXACT_INT = 2**53
"""Largest integer a JSON reader (Rego's, a browser's) holds exactly."""

_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")


def _hostname(value: str) -> str:
    """A DNS name (lower-case, no trailing dot) or an IP address: what a route can point at."""
    value = value.strip().rstrip(".").lower()
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        pass
    if len(value) > 253 or "." not in value or not all(_DNS_LABEL.match(label) for label in value.split(".")):
        raise ValueError("not a host name or IP address; allowed: a DNS name of dot-separated labels of a-z, 0-9 "
                         "and '-' (gw.us-east-1.llm.example.com), or an IPv4/IPv6 address")
    return value


def _domain(value: str) -> str:
    """A DNS domain records are made under (an IP address is not one)."""
    value = _hostname(value)
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return value
    raise ValueError("an IP address is not a domain; allowed: a DNS name such as llm.example.com")


def _zone_id(value: str) -> str:
    """A Route 53 hosted zone ID, with or without the `/hostedzone/` prefix AWS prints."""
    value = value.strip().removeprefix("/hostedzone/")
    if not re.fullmatch(r"[A-Z0-9]{1,32}", value):
        raise ValueError("not a Route 53 hosted zone ID; allowed: upper-case letters and digits as "
                         "`aws route53 list-hosted-zones` prints them (Z0123456789ABCDEFGHIJ)")
    return value


def _record_template(value: str) -> str:
    """A record name template: DNS labels with the placeholders {region} (required) and {model}."""
    allowed = ("allowed: dot-separated labels of a-z, 0-9 and '-' with the placeholders {region} (required) "
               "and {model}, e.g. {model}.{region}")
    if "{region}" not in value:
        raise ValueError(f"the record name must contain {{region}} (one record per user region); {allowed}")
    filled = value.replace("{region}", "r").replace("{model}", "m")
    if "{" in filled or "}" in filled or not all(_DNS_LABEL.match(label) for label in filled.split(".")):
        raise ValueError(f"not a record name template; {allowed}")
    return value


HostName = Annotated[str, AfterValidator(_hostname)]
# Kubernetes minor versions the replica workloads are rendered for and checked against (docs/replicas.md).
KubernetesVersion = Literal["1.28", "1.29", "1.30", "1.31", "1.32", "1.33", "1.34", "1.35", "1.36", "1.37"]


class StrictModel(BaseModel):
    """Input models: unknown keys are errors, values are validated on assignment too.

    Strict types (`true` is no count, `2.5` no integer, `"5"` no number) and finite numbers only
    (`.inf` and `.nan` are refused); each number field also has an upper bound, so that sums and
    products of a spec's numbers stay finite.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, strict=True, allow_inf_nan=False)


class Coordinates(StrictModel):
    """Where an on-prem site is, for latency estimates."""

    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


class NodeShape(StrictModel):
    """A node's own CPUs and memory (what the machine has; Kubernetes' system reserve is subtracted from it)."""

    cpus: int = Field(gt=0, le=4096, description="CPU cores (vCPUs) of one node.")
    memory_gb: float = Field(gt=0, le=65_536, description="Memory of one node, GB.")


class WeightsIdentity(StrictModel):
    """Who a pool's replicas are to the object store of their weights (docs/replicas.md, "Identity")."""

    aws_role_arn: str | None = Field(None, max_length=600, pattern=r"^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9_+=,.@/-]+$", description="EKS (IRSA): IAM role the replicas' ServiceAccount assumes, for s3:// weights; aws pools only.")
    gcp_service_account: str | None = Field(None, pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z][a-z0-9-]{4,28}[a-z0-9]\.iam\.gserviceaccount\.com$", description="GKE Workload Identity: Google service account the replicas act as, for gs:// weights; gcp pools only.")
    azure_client_id: str | None = Field(None, pattern=r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$", description="AKS Workload Identity: client ID of the managed identity the replicas use, for az:// weights; azure pools only.")
    secret: Name | None = Field(None, description="A Secret in the pool's namespace holding store credentials (AWS keys, an Azure connection string, a Google key file, HF_TOKEN): on-prem, or a store of another cloud.")

    @model_validator(mode="after")
    def _some(self) -> WeightsIdentity:
        if not self.model_fields_set:
            raise ValueError("empty identity; allowed: aws_role_arn, gcp_service_account, azure_client_id and/or secret")
        return self


class ModelCache(StrictModel):
    """Where replicas keep fetched weights, so a restarted pod does not download them again."""

    size_gb: int = Field(200, ge=1, le=100_000, description="Most the cache may hold, GB: the checkpoints of the models it holds and vLLM's compile cache (a 70B bf16 checkpoint is 141 GB).")
    storage_class: Name | None = Field(None, description="Unset: a node-local emptyDir per pod (kept across container restarts). Set: one ReadWriteMany PersistentVolumeClaim of this storage class per pool, shared by its replicas and kept across pods.")


_IDENTITY_PROVIDER = {"aws_role_arn": "aws", "gcp_service_account": "gcp", "azure_client_id": "azure"}


class Pool(StrictModel):
    """A GPU node pool: a group of identical nodes in one place, scaled as a unit."""

    name: Name
    provider: Provider
    region: str = Field(min_length=1, description="Cloud region (us-east-1, europe-west4, westeurope), an on-prem site name, or `local`.")
    zone: str | None = Field(None, description="Zone, where the provider prices or places by zone.")
    instance_type: str | None = Field(None, description="Cloud instance type, priced from the catalog (p5.48xlarge, a3-highgpu-8g, Standard_ND96isr_H100_v5).")
    gpu: str | None = Field(None, description="GPU model (canonical name, e.g. A100-80GB); required for on-prem and local pools.")
    gpus_per_node: int | None = Field(None, gt=0, le=16, description="GPUs per node; required with `gpu`.")
    cost_per_hour: float | None = Field(None, ge=0, le=10_000, description="USD per node-hour: amortized for owned hardware; overrides the catalog price for clouds (negotiated rates).")
    capacity: Capacity = Field("on_demand", description="Capacity market: on_demand, spot, reserved (clouds) or owned (on-prem, local).")
    min_nodes: int = Field(0, ge=0, le=10_000, description="Nodes that always run.")
    max_nodes: int = Field(ge=0, le=10_000, description="The most nodes the pool may scale to (quota, hardware, or policy).")
    location: str | Coordinates | None = Field(None, description="On-prem sites: a known metro or cloud region nearby (`frankfurt`, `aws:eu-central-1`) or coordinates.")
    node: NodeShape | None = Field(None, description="CPUs and memory of one node: required for onprem pools (cloud instance types take theirs from the catalog; local pools from this machine).")
    cluster: str | None = Field(None, description="Kubernetes cluster (or kube context) the pool's nodes join.")
    gateway: HostName | None = Field(None, description="Host name or IP address of the gateway (vllm-router, behind its load balancer) that serves this pool's replicas; `routing.dns` records point here. Pools behind one gateway share it.")
    labels: dict[str, str] = Field(default_factory=dict, description="Node labels.")
    taints: list[str] = Field(default_factory=list, description="Node taints as `key=value:Effect`.")
    tags: dict[str, str] = Field(default_factory=dict, description="Cloud tags, merged over the environment's tags.")
    identity: WeightsIdentity | None = Field(None, description="How replicas read their weights' object store: the cloud's workload identity or a Secret. Unset: Hugging Face and local sources only.")
    model_cache: ModelCache = Field(default_factory=ModelCache, description="The replicas' weights cache volume.")
    kubernetes_version: KubernetesVersion | None = Field(None, description="Minor version of the pool's cluster: manifests use what it supports. Unset: what every supported version accepts.")

    @model_validator(mode="after")
    def _identity_matches_provider(self) -> Pool:
        for field, provider in _IDENTITY_PROVIDER.items():
            if self.identity is not None and getattr(self.identity, field) is not None and self.provider != provider:
                raise ValueError(f"identity.{field} is for {provider} pools, and this pool's provider is {self.provider}; "
                                 "allowed: the pool's own cloud's field, or identity.secret")
        return self


class Slo(StrictModel):
    """What users of a model are promised; the planner only places within it."""

    ttft_p95_ms: float = Field(gt=0, le=3_600_000, description="Time to first token, p95, ms (at the replica).")
    tpot_p95_ms: float = Field(gt=0, le=3_600_000, description="Time per output token, p95, ms.")
    max_rtt_ms: float = Field(gt=0, le=3_600_000, description="Most network round-trip time between users and the serving pool, ms.")


class Spread(StrictModel):
    """Replicas of a model spread over failure domains so one outage cannot take it down."""

    across: FailureDomain = Field("region", description="Failure domain: provider, region, zone or pool.")
    min: int = Field(2, ge=1, le=16, description="Distinct domains that must host at least one replica.")


class Residency(StrictModel):
    """Where a model may run (data residency, licence). Empty lists mean no restriction."""

    providers: list[Provider] = Field(default_factory=list)
    regions: list[str] = Field(default_factory=list, description="Region names or shell patterns (`eu-*`, `europe-*`).")
    continents: list[str] = Field(default_factory=list, description="e.g. europe, north-america.")


class CustomArchitecture(StrictModel):
    """Any decoder model: its Hugging Face config.json, or its shape inline (docs/capacity.md)."""

    name: str | None = Field(None, min_length=1, max_length=64, description="Name in plans and messages; default: the config file's name (its folder's for config.json), or `custom`.")
    config: str | None = Field(None, min_length=1, description="Path to the model's config.json, relative to this spec's directory or absolute; the shape and parameter counts are read from it. Leave out the other fields.")
    params_b: float | None = Field(None, gt=0, le=100_000, description="Total parameters, billions; derived from the shape when unset.")
    active_params_b: float | None = Field(None, gt=0, le=100_000, description="Parameters used per token (MoE), billions; derived when unset, equal to params_b for dense models.")
    layers: int | None = Field(None, gt=0, le=10_000, description="Decoder layers (num_hidden_layers).")
    hidden: int | None = Field(None, gt=0, le=1 << 20, description="Hidden size (hidden_size).")
    heads: int | None = Field(None, gt=0, le=1 << 16, description="Attention (query) heads (num_attention_heads).")
    kv_heads: int | None = Field(None, gt=0, le=1 << 16, description="Key/value heads (num_key_value_heads); default: heads.")
    head_dim: int | None = Field(None, gt=0, le=1 << 16, description="Dimensions per head; default: hidden / heads.")
    vocab: int | None = Field(None, gt=0, le=100_000_000, description="Vocabulary size (vocab_size).")
    max_context: int | None = Field(None, gt=0, le=100_000_000, description="Longest sequence the model supports, tokens (max_position_embeddings).")
    intermediate_size: int | None = Field(None, gt=0, le=1 << 24, description="MLP width of the dense layers (per expert for Mixtral-style MoE without moe_intermediate_size).")
    experts: int | None = Field(None, gt=0, le=1 << 16, description="Routed experts per MoE layer (num_local_experts, num_experts, n_routed_experts).")
    experts_per_token: int | None = Field(None, gt=0, le=1 << 16, description="Routed experts each token uses (num_experts_per_tok).")
    moe_intermediate_size: int | None = Field(None, gt=0, le=1 << 24, description="MLP width of one routed expert.")
    shared_experts: int | None = Field(None, ge=0, le=1 << 16, description="Always-on shared experts of moe_intermediate_size each (DeepSeek's n_shared_experts).")
    shared_expert_intermediate_size: int | None = Field(None, gt=0, le=1 << 24, description="Width of the one gated shared expert (Qwen-MoE).")
    tie_embeddings: bool | None = Field(None, description="Output layer shares the input embeddings (tie_word_embeddings); default: false.")
    # Set by orchestrator.profiles.resolve_architecture: the shape read relative to the spec's own file, which
    # copies of the spec (model_copy shares this object) reuse instead of resolving the path without that file.
    _resolved: object = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _config_or_inline(self) -> CustomArchitecture:
        inline = sorted(k for k in self.model_fields_set - {"name", "config"} if getattr(self, k) is not None)
        if self.config is not None and inline:
            raise ValueError(f"config given with {', '.join(inline)}; allowed: `config` (and `name`) alone, "
                             "or the shape inline without `config`")
        return self


VERSION_PATTERN = r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$"
VersionName = Annotated[str, Field(min_length=1, max_length=40, pattern=VERSION_PATTERN,
                                   description="Lower-case letters, digits, '.' and '-' (v2, 2026-12-05, ft-3.1).")]
IMAGE_DIGEST_PATTERN = r"^[^\s@]+@sha256:[0-9a-f]{64}$"


class ModelVersion(StrictModel):
    """A release of a model that `orchestrator rollout --to NAME` can move to: what differs from the model's own fields."""

    name: VersionName
    source: str | None = Field(None, min_length=1, description="Weights of this version; unset: the model's `source`.")
    image: str | None = Field(None, max_length=500, pattern=IMAGE_DIGEST_PATTERN, description="Replica image of this version, pinned by digest (registry/vllm@sha256:...); unset: the environment's image (settings `kubernetes_image`). Local replicas run this machine's vLLM.")
    vllm_args: list[Annotated[str, Field(min_length=1, max_length=500)]] = Field(default_factory=list, max_length=64, description="Extra `vllm serve` arguments of this version (`--quantization`, `--enable-prefix-caching`, ...), after gpufleet's own.")
    max_model_len: int | None = Field(None, gt=0, le=100_000_000, description="Longest context this version serves; unset: the model's.")


class RolloutPolicy(StrictModel):
    """How `orchestrator rollout` shifts traffic to a new version, and when it rolls back (docs/rollouts.md)."""

    steps: list[float] = Field(default_factory=lambda: [5.0, 25.0, 50.0, 100.0], min_length=1, max_length=20, description="Percent of the model's traffic on the new version at each step, increasing, ending at 100. [100] is a blue-green switch.")
    hold_s: float = Field(300, ge=0, le=86_400, description="Seconds each step is watched before it is judged.")
    min_requests: int = Field(50, ge=0, le=10_000_000, description="Requests the new version must have answered in a step before it is judged; a step waits for them up to `max_wait_s`.")
    max_wait_s: float = Field(1800, ge=0, le=604_800, description="Most seconds a step waits for `min_requests`; past that, the rollout rolls back (not enough traffic to judge).")
    max_error_rate_increase: float = Field(0.01, ge=0, le=1, description="Roll back when the new version's error rate (answers >= 400 and failed connections, counted alike for both versions) exceeds the old one's by more than this (0.01: one point).")
    max_ttft_ratio: float = Field(1.2, ge=1, le=100, description="Roll back when the new version's TTFT p95 exceeds the old one's by this factor, or exceeds the model's SLO while the old one's does not.")
    max_tpot_ratio: float = Field(1.2, ge=1, le=100, description="As `max_ttft_ratio`, for TPOT p95.")

    @field_validator("steps")
    @classmethod
    def _increasing_to_100(cls, steps: list[float]) -> list[float]:
        if any(not 0 < s <= 100 for s in steps) or any(b <= a for a, b in zip(steps, steps[1:], strict=False)) or steps[-1] != 100:
            raise ValueError(f"{steps} is not a ladder of traffic percentages; allowed: increasing numbers in (0, 100] "
                             "ending at 100, e.g. [5, 25, 50, 100] ([100] switches at once: blue-green)")
        return steps


class ScaleToZero(StrictModel):
    """Let an idle model's replicas stop (and its pools shrink) until a request comes (docs/scale-to-zero.md)."""

    idle_after_s: float = Field(900, ge=10, le=604_800, description="Seconds without a request after which the model's replicas stop.")
    hold_s: float = Field(120, ge=0, le=3600, description="Seconds the gateway holds a request for a stopped model while it starts; past that it answers 503 with Retry-After.")


class Model(StrictModel):
    """A model to serve, with its size, SLO and placement constraints."""

    name: Name
    architecture: CustomArchitecture | str = Field(description="A known architecture (llama-3.1-8b, llama-3.1-70b, ...; see docs/capacity.md), or any decoder model as `{config: path/to/config.json}` or its shape inline; used for memory and throughput estimates.")
    source: str = Field(min_length=1, description="Weights: s3://, gs://, az://, a Hugging Face id, or a local path.")
    dtype: Dtype = Field("bf16", description="Weight precision.")
    gpus_per_replica: int | None = Field(None, ge=1, le=16, description="GPUs per replica (tensor parallel); derived per GPU type from memory when unset.")
    memory_gb: float | None = Field(None, gt=0, le=1_000_000, description="GPU memory one replica needs (weights + KV cache), GB; derived from the architecture when unset.")
    max_model_len: int | None = Field(None, gt=0, le=100_000_000, description="Longest context served, tokens.")
    slo: Slo
    min_replicas: int = Field(1, ge=0, le=100_000)
    spread: Spread | None = None
    residency: Residency = Field(default_factory=Residency)
    version: VersionName = Field("v1", description="Name of the release the fields above describe (what runs until a rollout moves the model to one of `versions`).")
    versions: list[ModelVersion] = Field(default_factory=list, max_length=64, description="Other releases `orchestrator rollout --to NAME` can move the model to.")
    rollout: RolloutPolicy = Field(default_factory=RolloutPolicy, description="Traffic steps and rollback thresholds of `orchestrator rollout`.")
    scale_to_zero: ScaleToZero | None = Field(None, description="Stop the model's replicas when idle (needs min_replicas: 0); the gateway wakes it on the next request.")

    @model_validator(mode="after")
    def _versions_and_idle(self) -> Model:
        names = [self.version, *(v.name for v in self.versions)]
        if len(set(names)) != len(names):
            raise ValueError(f"version names repeat ({', '.join(names)}); allowed: one name per release, "
                             "and `version` (the model's own fields) not reused in `versions`")
        if self.scale_to_zero is not None and self.min_replicas != 0:
            raise ValueError(f"scale_to_zero with min_replicas {self.min_replicas}; allowed: min_replicas: 0 "
                             "(replicas that must always run cannot stop)")
        return self

    def version_named(self, name: str | None = None) -> ModelVersion:
        """The named release (default: the model's own fields) with every field resolved; KeyError if none has that name."""
        base = ModelVersion(name=self.version, source=self.source, max_model_len=self.max_model_len)
        if name is None or name == self.version:
            return base
        for version in self.versions:
            if version.name == name:
                return version.model_copy(update={"source": version.source or self.source,
                                                  "max_model_len": version.max_model_len or self.max_model_len})
        raise KeyError(name)

    @field_validator("architecture", mode="wrap")
    @classmethod
    def _architecture_errors(cls, value: object, handler: ValidatorFunctionWrapHandler) -> CustomArchitecture | str:
        """Errors of the mapping form located at its own fields, without pydantic's union member tags."""
        if not isinstance(value, (str, dict, CustomArchitecture)):
            raise PydanticCustomError("architecture_type", "neither a name nor a mapping; allowed: a known architecture "
                                      "name (llama-3.1-8b), {config: path/to/config.json}, or the shape inline")
        try:
            return handler(value)
        except ValidationError as exc:
            # a mapping is no string: keep the mapping member's errors, each without its member tag
            errors = [{"type": e["type"], "loc": e["loc"][1:], "input": e["input"], **({"ctx": e["ctx"]} if "ctx" in e else {})}
                      for e in exc.errors() if e["loc"][:1] != ("str",)]
            if not errors:
                raise
            raise ValidationError.from_exception_data(exc.title, errors) from None


class SizeBucket(StrictModel):
    """One class of request sizes in a demand's mix: its mean tokens and its share of the requests."""

    input_tokens: int = Field(gt=0, le=100_000_000, description="Mean prompt tokens of the requests in this bucket.")
    output_tokens: int = Field(gt=0, le=100_000_000, description="Mean generated tokens of the requests in this bucket.")
    share: float = Field(gt=0, le=1, description="Share of the demand's requests in this bucket; a mix's shares add up to 1.")
    label: str | None = Field(None, max_length=64, description="Where the bucket comes from, e.g. `in<=4096 out<=256` (informational).")


class Demand(StrictModel):
    """Traffic for one model from one user region: a rate, and request sizes as means or as a mix."""

    model: str = Field(min_length=1)
    region: str = Field(min_length=1, description="Where users are: a metro (frankfurt), a coarse area (us-east) or a cloud region.")
    requests_per_second: float = Field(gt=0, le=1_000_000, description="Mean requests/s over the window the demand describes.")
    input_tokens: int | None = Field(None, gt=0, le=100_000_000, description="Mean prompt tokens per request; derived from `size_mix` when that is given.")
    output_tokens: int | None = Field(None, gt=0, le=100_000_000, description="Mean generated tokens per request; derived from `size_mix` when that is given.")
    size_mix: list[SizeBucket] | None = Field(None, min_length=1, max_length=64, description="Request sizes as buckets with shares (docs/planner.md): capacity is sized per bucket, not at the mean. `orchestrator plan --trace` derives one.")
    peak_factor: float = Field(1.0, ge=1, le=1000, description="The planner sizes for requests_per_second x peak_factor (bursts above the mean); 1: plan for the mean as written.")
    peak_source: str | None = Field(None, max_length=200, description="Where peak_factor comes from (informational; a trace-derived demand says which windows and percentile).")

    @model_validator(mode="after")
    def _sizes(self) -> Demand:
        if self.size_mix is None:
            missing = [f for f in ("input_tokens", "output_tokens") if getattr(self, f) is None]
            if missing:
                raise ValueError(f"{' and '.join(missing)} missing; allowed: mean input_tokens and output_tokens, or a size_mix")
            return self
        total = sum(b.share for b in self.size_mix)
        if abs(total - 1.0) > 0.01:
            raise ValueError(f"size_mix shares add up to {total:.4g}; allowed: shares that add up to 1 (within 0.01)")
        mean_in, mean_out = self.mean_tokens()
        for name, mean in (("input_tokens", mean_in), ("output_tokens", mean_out)):
            if getattr(self, name) is None:
                self.__dict__[name] = max(1, round(mean))  # not setattr: that would validate again
        return self

    def buckets(self) -> list[SizeBucket]:
        """The size mix with shares normalised to 1; one bucket at the means when no mix is given."""
        if self.size_mix is None:
            return [SizeBucket(input_tokens=self.input_tokens, output_tokens=self.output_tokens, share=1.0)]  # type: ignore[arg-type]
        total = sum(b.share for b in self.size_mix)
        return [b.model_copy(update={"share": b.share / total}) for b in self.size_mix]

    def mean_tokens(self) -> tuple[float, float]:
        """Mean (input, output) tokens per request over the mix."""
        buckets = self.buckets()
        return (sum(b.share * b.input_tokens for b in buckets), sum(b.share * b.output_tokens for b in buckets))


class Budget(StrictModel):
    """Spending cap the planner respects."""

    usd_per_hour: float | None = Field(None, gt=0, le=1_000_000_000, description="Most the fleet may cost per hour; unset means no cap.")


class State(StrictModel):
    """Where rebalance journals, the ledger and local replicas are recorded."""

    url: str | None = Field(None, description="SQLAlchemy URL (sqlite:///..., postgresql+psycopg://...); default: an SQLite file in the environment's state directory.")


class StateBackend(StrictModel):
    """Where the stacks keep their Terraform state (docs/stacks.md, "State backends"). Names are global
    to each cloud, so set them, or a prefix unique to your organisation; each cloud's naming rules are
    checked when the stacks are synthesized."""

    prefix: str | None = Field(None, max_length=40, description="Organisation-unique prefix of the names not set below: <prefix>-gpufleet-tfstate-<env> (S3 and GCS buckets, the Azure resource group), <prefix>gpufleet<env> cut to 24 characters (the Azure storage account).")
    aws_bucket: str | None = Field(None, max_length=63, description="S3 bucket of the AWS stack's state.")
    aws_region: str | None = Field(None, max_length=30, description="Region of that bucket. Unset: the region of the environment's first AWS pool.")
    gcp_bucket: str | None = Field(None, max_length=222, description="GCS bucket of the GCP stack's state.")
    azure_resource_group: str | None = Field(None, max_length=90, description="Resource group of the Azure state's storage account.")
    azure_storage_account: str | None = Field(None, max_length=24, description="Storage account of the Azure stack's state.")
    azure_container: str | None = Field(None, max_length=63, description="Blob container of the Azure stack's state. Unset: tfstate.")


class Stacks(StrictModel):
    """How `python -m stacks` declares the environment's node pools."""

    state: StateBackend = Field(default_factory=StateBackend, description="Where each stack keeps its Terraform state.")


class Policies(StrictModel):
    """Rego guardrails run before a plan is applied."""

    paths: list[str] = Field(default_factory=lambda: ["policies"], description="Directories of .rego files, relative to the repository.")
    data: dict[str, object] = Field(default_factory=dict, description="Data the rules read (ceilings, allowed regions, licences).")

    @field_validator("data")
    @classmethod
    def _json_numbers(cls, data: dict[str, object]) -> dict[str, object]:
        """Rules read the data as JSON: a number must be finite, an integer exact in a double."""
        pending: list[object] = [data]
        while pending:
            value = pending.pop()
            if isinstance(value, dict):
                pending.extend(value.values())
            elif isinstance(value, list):
                pending.extend(value)
            elif isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{value} is not a number policies can read; allowed: finite numbers")
            elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_EXACT_INT:
                raise ValueError(f"{value} is too large; allowed: integers within ±{MAX_EXACT_INT} (exact in JSON)")
        return data


class Route53Dns(StrictModel):
    """Weighted records in an Amazon Route 53 hosted zone: one per (model, user region), a weight per pool."""

    provider: Literal["route53"] = Field(description="DNS service that holds the records: route53.")
    zone_id: Annotated[str, AfterValidator(_zone_id)] = Field(description="Route 53 hosted zone ID (Z0123456789ABCDEFGHIJ) of the zone that holds `domain`.")
    domain: Annotated[str, AfterValidator(_domain)] = Field(description="Domain the records are made under (llm.example.com); the zone's own name or a name inside it.")
    record: Annotated[str, AfterValidator(_record_template)] = Field("{model}.{region}", description="Record name under `domain`: {region} is the demand's user region, {model} the model (both made DNS-safe). Leave out {model} only where every gateway serves every model.")
    ttl: int = Field(60, ge=1, le=86_400, description="Seconds resolvers may cache an answer; low, so that a new plan's shares take effect soon.")


class Routing(StrictModel):
    """How users' traffic reaches the plan's pools in the shares the plan gives (docs/routes.md)."""

    dns: Route53Dns | None = Field(None, description="Weighted DNS records per user region, pointing at the pools' `gateway`s. Unset: no DNS is changed.")


class FleetSpec(StrictModel):
    """One environment: its pools, models, demand, budget, state and policies."""

    environment: Name | None = Field(None, description="Environment name; defaults to the file name.")
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict, description="Tags on every pool (owner, cost-center, ...).")
    pools: list[Pool] = Field(min_length=1)
    models: list[Model] = Field(min_length=1)
    demand: list[Demand] = Field(default_factory=list)
    budget: Budget = Field(default_factory=Budget)
    state: State = Field(default_factory=State)
    stacks: Stacks = Field(default_factory=Stacks, description="The stacks' settings: where they keep their state.")
    policies: Policies = Field(default_factory=Policies)
    routing: Routing | None = Field(None, description="Realize the plan's traffic shares after a rebalance (weighted DNS, gateways). Unset: routes are left alone.")
