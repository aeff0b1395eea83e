"""Resolve a fleet spec against the catalogs into exactly what the planner weighs.

The spec says *what* (pools by instance type, models by architecture, users by region);
this module looks up *how much* and *how far*: each pool's price per node-hour and GPU,
what one replica of each model sustains on each pool's GPU within its SLO, and the RTT
from every user region to every pool. Problems found here (an instance type not sold in
a region, a model that fits no GPU, an unknown user region) are spec errors, reported
all at once with their location in the file, like the loader's.

The result carries the fields of the placement contract (models, demand, pools,
capacity, latency) so a plan can embed its inputs verbatim.
"""

from __future__ import annotations

import fnmatch
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from orchestrator.catalog.gpus import gpu_spec
from orchestrator.catalog.nodes import Resources, allocatable, host_memory_fits, node_hardware
from orchestrator.catalog.price_catalog import PriceCatalog
from orchestrator.errors import InputError, SpecError, SpecIssue
from orchestrator.latency import Location, load_latency_model, resolve, site_location
from orchestrator.settings import load_settings
from orchestrator.profiles import best_mix_capacity
from orchestrator.profiles.perf_model import weight_bytes_per_param
from orchestrator.profiles.architectures import Architecture, ArchitectureError, resolve_architecture
from orchestrator.spec import FleetSpec, Model, Pool, load_spec
from orchestrator.spec.loader import line_map, locate
from orchestrator.spec.checks import did_you_mean


@dataclass(frozen=True)
class PoolInput:
    """A pool as the planner sees it: priced, with its GPU and place resolved."""

    pool: str
    provider: str
    region: str
    zone: str | None
    gpu: str
    gpu_memory_gb: float
    capacity: str
    gpus_per_node: int
    min_nodes: int
    max_nodes: int
    cost_per_node_hour: float
    price_source: str
    continent: str | None
    # one node's machine (catalog, the spec's `node`, or this machine for local pools; None: unknown)
    # and what pods may request on it after the system reserve (catalog/nodes.py)
    vcpus: float | None = None
    memory_gib: float | None = None
    allocatable_cpu_millicores: int | None = None
    allocatable_memory_mib: int | None = None

    @property
    def allocatable(self) -> Resources | None:
        """CPU and memory pods may request on one node; None when the node's shape is unknown."""
        if self.allocatable_cpu_millicores is None or self.allocatable_memory_mib is None:
            return None
        return Resources(self.allocatable_cpu_millicores, self.allocatable_memory_mib)


@dataclass(frozen=True)
class ModelInput:
    model: str
    min_replicas: int
    max_rtt_ms: float
    ttft_p95_ms: float
    tpot_p95_ms: float


@dataclass(frozen=True)
class SizeInput:
    """One bucket of a demand's request-size mix."""

    input_tokens: int
    output_tokens: int
    share: float
    label: str | None = None


@dataclass(frozen=True)
class DemandInput:
    """One (model, user region) demand: the mean rate, the burst factor the plan sizes for, and the size mix."""

    model: str
    region: str
    rps: float
    input_tokens: int
    output_tokens: int
    continent: str | None = None
    buckets: tuple[SizeInput, ...] = ()
    peak_factor: float = 1.0
    peak_source: str | None = None

    @property
    def planned_rps(self) -> float:
        """The rate the plan must carry within the SLO: the mean times the burst factor."""
        return self.rps * self.peak_factor

    @property
    def sizes(self) -> tuple[SizeInput, ...]:
        """The size mix; one bucket at the means when the demand gives none."""
        return self.buckets or (SizeInput(self.input_tokens, self.output_tokens, 1.0),)


@dataclass(frozen=True)
class SizeCapacity:
    """Requests/s one replica sustains within the SLO when it serves only requests of this size (0: it cannot)."""

    input_tokens: int
    output_tokens: int
    rps: float
    binding: str | None


@dataclass(frozen=True)
class CapacityInput:
    """What one replica of a model sustains on one pool within the model's SLO.

    `rps_per_replica` is for the model's whole request-size mix (the part it can serve);
    `by_size` has the rate for each size bucket of the model's demand, which the planner uses.
    """

    model: str
    pool: str
    gpus_per_replica: int
    rps_per_replica: float
    source: str
    binding: str
    by_size: tuple[SizeCapacity, ...] = ()

    def rate(self, input_tokens: int, output_tokens: int) -> float:
        """Requests/s of one size; the mix's rate when no size is listed (inputs made before size mixes)."""
        for s in self.by_size:
            if s.input_tokens == input_tokens and s.output_tokens == output_tokens:
                return s.rps
        return self.rps_per_replica


@dataclass(frozen=True)
class LatencyInput:
    region: str
    pool: str
    rtt_ms: float
    source: str


@dataclass(frozen=True)
class FleetInputs:
    """Everything the planner weighs for one environment."""

    environment: str
    budget_usd_per_hour: float | None
    models: tuple[ModelInput, ...]
    demand: tuple[DemandInput, ...]
    pools: tuple[PoolInput, ...]
    capacity: tuple[CapacityInput, ...]
    latency: tuple[LatencyInput, ...]

    def to_dict(self) -> dict:
        return asdict(self)


def _price_pool(index: int, pool: Pool, catalog: PriceCatalog, issues: list[SpecIssue]) -> tuple[str, float, int, float, str] | None:
    """(gpu, gpu memory, gpus per node, $/node-hour, price source), or None after recording why not."""
    at = f"pools[{index}]"
    if pool.provider in ("onprem", "local"):
        try:
            spec = gpu_spec(pool.gpu or "")
        except InputError as exc:
            issues.append(SpecIssue(f"{at}.gpu", str(exc)))
            return None
        return spec.name, spec.memory_gb, pool.gpus_per_node or 1, pool.cost_per_hour or 0.0, "spec (owned, amortized)"
    instance_type = pool.instance_type or ""
    if instance_type not in catalog.instance_types(pool.provider):
        issues.append(SpecIssue(f"{at}.instance_type", f"unknown {pool.provider} GPU instance type '{instance_type}'.{did_you_mean(instance_type, catalog.instance_types(pool.provider))} See `orchestrator catalog show --provider {pool.provider}`"))
        return None
    if pool.region not in catalog.regions(pool.provider):
        issues.append(SpecIssue(f"{at}.region", f"unknown {pool.provider} region '{pool.region}'.{did_you_mean(pool.region, catalog.regions(pool.provider))}"))
        return None
    offer = catalog.offer(pool.provider, instance_type, pool.region, pool.zone)
    if offer is None:
        where = sorted({o.zone or o.region for o in catalog.find(provider=pool.provider, instance_type=instance_type)})
        field = "zone" if pool.zone else "region"
        issues.append(SpecIssue(f"{at}.{field}", f"{instance_type} is not offered in {pool.zone or pool.region}; offered in: {', '.join(where[:12])}{' ...' if len(where) > 12 else ''}"))
        return None
    price = pool.cost_per_hour if pool.cost_per_hour is not None else offer.price(pool.capacity)
    if price is None:
        issues.append(SpecIssue(f"{at}.capacity", f"no {pool.capacity} price for {instance_type} in {offer.zone or offer.region}; priced markets: {', '.join(c for c in ('on_demand', 'spot', 'reserved') if offer.price(c) is not None)}. To fix: choose one of them or set cost_per_hour"))
        return None
    source = "spec (negotiated)" if pool.cost_per_hour is not None else f"{offer.source}, as of {offer.as_of}"
    return offer.gpu, offer.gpu_memory_gb, offer.gpu_count, price, source


def _pool_location(index: int, pool: Pool, issues: list[SpecIssue]) -> Location | None:
    try:
        if pool.provider == "onprem":
            return site_location(pool.region, pool.location)  # type: ignore[arg-type]
        return resolve(pool.region, provider=pool.provider)
    except InputError as exc:
        issues.append(SpecIssue(f"pools[{index}].{'location' if pool.provider == 'onprem' else 'region'}", str(exc)))
        return None


def _allowed(model: Model, pool: PoolInput) -> bool:
    """Residency and licence: may this model run in this pool at all?"""
    rules = model.residency
    if rules.providers and pool.provider not in rules.providers:
        return False
    if rules.regions and not any(fnmatch.fnmatch(pool.region, pattern) for pattern in rules.regions):
        return False
    if rules.continents and pool.continent not in rules.continents:
        return False
    return True


DEFAULT_MIX = (SizeInput(1000, 200, 1.0),)  # a model with no demand yet: sized for a typical chat request


def model_size_mixes(spec: FleetSpec) -> dict[str, tuple[SizeInput, ...]]:
    """Each model's request-size mix over all its demand: every distinct bucket, weighted by the requests it plans for.

    Buckets are kept apart (not averaged): a replica's capacity is sized per bucket.
    """
    weights: dict[str, dict[tuple[int, int], float]] = defaultdict(lambda: defaultdict(float))
    for d in spec.demand:
        for b in d.buckets():
            weights[d.model][(b.input_tokens, b.output_tokens)] += d.requests_per_second * d.peak_factor * b.share
    mixes = {}
    for model, sizes in weights.items():
        total = sum(sizes.values())
        mixes[model] = tuple(SizeInput(i, o, w / total) for (i, o), w in sorted(sizes.items(), key=lambda kv: -kv[1]))
    return mixes


def pool_capacity(
    model: Model,
    pool: PoolInput,
    mix: Sequence[SizeInput],
    gpus: int | None = None,
    *,
    arch: Architecture | None = None,
    base_dir: Path | None = None,
    profiles_dir: Path | None = None,
) -> CapacityInput | None:
    """What one replica of `model` sustains on `pool` for a request-size mix, per bucket; None when no replica fits.

    `gpus` fixes the replica size (default: the model's `gpus_per_replica`, else the size that serves
    the mix best). `arch`: the model's resolved architecture (default: resolved here, a relative
    config.json under `base_dir`). Measured profiles are read from `profiles_dir`.
    """
    arch = arch or resolve_architecture(model.architecture, base_dir)
    free = pool.allocatable
    weights_gb = arch.params_b * weight_bytes_per_param(model.dtype)

    def loads(size: int) -> bool:
        """The replica's share of the node's host memory can load its weights (`catalog.nodes.host_memory_fits`)."""
        return free is None or host_memory_fits(free, pool.gpus_per_node, size, weights_gb)

    estimate = best_mix_capacity(
        arch, gpu_spec(pool.gpu), model.slo, list(mix), max_gpus=pool.gpus_per_node, gpus=gpus or model.gpus_per_replica,
        allow=loads, dtype=model.dtype, memory_gb=model.memory_gb, max_model_len=model.max_model_len, model_name=model.name,
        profiles_dir=profiles_dir,
    )
    if estimate is None:
        return None
    return CapacityInput(
        model=model.name, pool=pool.pool, gpus_per_replica=estimate.gpus,
        rps_per_replica=round(estimate.rps, 4), source=estimate.source, binding=estimate.binding,
        by_size=tuple(SizeCapacity(b.input_tokens, b.output_tokens, round(e.rps, 4), e.binding)
                      for b, e in zip(mix, estimate.by_size)),
    )


def resolve_inputs(spec: FleetSpec, catalog: PriceCatalog, file: str = "<spec>", profiles_dir: Path | None = None) -> FleetInputs:
    """The planner's inputs for a spec, or a SpecError listing every unresolvable field.

    Measured capacity profiles are read from `profiles_dir` (default: the settings').
    """
    profiles_dir = profiles_dir or load_settings().profiles_dir
    issues: list[SpecIssue] = []
    pools: list[PoolInput] = []
    locations: dict[str, Location] = {}
    for index, pool in enumerate(spec.pools):
        priced = _price_pool(index, pool, catalog, issues)
        # a cloud pool that cannot be priced has a bad region or type: one message about it is enough
        location = _pool_location(index, pool, issues) if priced or pool.provider == "onprem" else None
        if priced is None or location is None:
            continue
        gpu, memory, per_node, price, source = priced
        locations[pool.name] = location
        hardware = node_hardware(pool, catalog)
        free = allocatable(pool.provider, hardware) if hardware else None
        pools.append(PoolInput(
            pool=pool.name, provider=pool.provider, region=pool.region, zone=pool.zone, gpu=gpu,
            gpu_memory_gb=memory, capacity=pool.capacity, gpus_per_node=per_node,
            min_nodes=pool.min_nodes, max_nodes=pool.max_nodes, cost_per_node_hour=round(price, 5),
            price_source=source, continent=location.continent,
            vcpus=hardware.vcpus if hardware else None, memory_gib=round(hardware.memory_gib, 3) if hardware else None,
            allocatable_cpu_millicores=free.cpu_millicores if free else None,
            allocatable_memory_mib=free.memory_mib if free else None,
        ))

    mixes = model_size_mixes(spec)
    capacity: list[CapacityInput] = []
    for index, model in enumerate(spec.models):
        try:
            arch = resolve_architecture(model.architecture, Path(file).parent if Path(file).is_file() else None)
        except ArchitectureError as exc:
            issues.append(SpecIssue(f"models[{index}].architecture{exc.at}", str(exc)))
            continue
        allowed = [p for p in pools if _allowed(model, p)]
        if pools and not allowed:
            issues.append(SpecIssue(f"models[{index}].residency", "no pool satisfies this model's residency; loosen it or add a pool where it may run"))
        mix = mixes.get(model.name, DEFAULT_MIX)
        fits = []
        for pool in allowed:
            estimate = pool_capacity(model, pool, mix, arch=arch, profiles_dir=profiles_dir)
            if estimate is None:
                continue
            fits.append(pool)
            capacity.append(estimate)
        if allowed and not fits:
            gpus = sorted({f"{p.gpus_per_node}x {p.gpu} ({p.gpu_memory_gb:g} GB)" for p in allowed})
            issues.append(SpecIssue(f"models[{index}]", f"'{model.name}' ({arch.name}, {model.dtype}) fits no pool's GPUs (GPU memory, or the node's host memory per GPU to load the weights: docs/capacity.md): {', '.join(gpus)}. To fix: add a pool with more GPU memory per node, a smaller dtype, or a smaller model"))

    latency_model = load_latency_model()
    latency: list[LatencyInput] = []
    first_use = {d.region: i for i, d in reversed(list(enumerate(spec.demand)))}
    continents: dict[str, str | None] = {}
    for region, index in first_use.items():
        try:
            user = resolve(region)
        except InputError as exc:
            issues.append(SpecIssue(f"demand[{index}].region", str(exc)))
            continue
        continents[region] = user.continent
        by_place: dict[Location, LatencyInput] = {}  # many pools share a region: estimate once
        try:
            for pool in pools:
                place = locations[pool.pool]
                if place not in by_place:
                    estimate = latency_model.rtt(user, place)
                    by_place[place] = LatencyInput(region=region, pool="", rtt_ms=round(estimate.rtt_ms, 2), source=estimate.source)
                latency.append(replace(by_place[place], pool=pool.pool))
        except InputError as exc:  # e.g. users on `local` and a pool elsewhere
            issues.append(SpecIssue(f"demand[{index}].region", str(exc)))

    if issues:
        raise SpecError(file, issues)
    return FleetInputs(
        environment=spec.environment or "default",
        budget_usd_per_hour=spec.budget.usd_per_hour,
        models=tuple(ModelInput(m.name, m.min_replicas, m.slo.max_rtt_ms, m.slo.ttft_p95_ms, m.slo.tpot_p95_ms) for m in spec.models),
        demand=tuple(DemandInput(d.model, d.region, d.requests_per_second, d.input_tokens, d.output_tokens, continents.get(d.region),
                                 tuple(SizeInput(b.input_tokens, b.output_tokens, b.share, b.label) for b in d.buckets()) if d.size_mix else (),
                                 d.peak_factor, d.peak_source)
                     for d in spec.demand),
        pools=tuple(pools),
        capacity=tuple(capacity),
        latency=tuple(latency),
    )


def load_inputs(path: Path, catalog: PriceCatalog, profiles_dir: Path | None = None) -> tuple[FleetSpec, FleetInputs]:
    """Load a spec file and resolve it; every problem is reported with its line in the file.

    A spec that parses but fails its self-contained checks (min_nodes > max_nodes, say) is
    still resolved against the catalogs, so one run reports those problems too (an
    instance-type typo), in the order of the file.
    """
    try:
        spec = load_spec(path)
    except SpecError as exc:
        if exc.spec is None:
            raise
        raise SpecError(exc.file, _sorted_issues([*exc.issues, *_catalog_issues(exc.spec, catalog, path, profiles_dir)])) from None
    try:
        return spec, resolve_inputs(spec, catalog, str(path), profiles_dir)
    except SpecError as exc:
        raise SpecError(str(path), locate(exc.issues, line_map(path.read_text()))) from None


def _catalog_issues(spec: FleetSpec, catalog: PriceCatalog, path: Path, profiles_dir: Path | None) -> list[SpecIssue]:
    """What resolving a spec that failed its own checks finds besides (best effort: an inconsistent spec may stop it early)."""
    try:
        resolve_inputs(spec, catalog, str(path), profiles_dir)
    except SpecError as exc:
        return locate(exc.issues, line_map(path.read_text()))
    except Exception:  # noqa: BLE001 - the spec's own problems are already reported; these are extra
        return []
    return []


def _sorted_issues(issues: list[SpecIssue]) -> list[SpecIssue]:
    """Each issue once, in the order of the file (those without a line last)."""
    unique = list(dict.fromkeys(issues))
    return sorted(unique, key=lambda i: (i.line is None, i.line or 0))
