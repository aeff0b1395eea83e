"""A whole `rebalance` of a 500-pool hybrid fleet against the local fakes: API calls, and where the time goes.

    python -m bench.bench_rebalance_clusters

`bench_providers` counts what each scaler and Deployment call costs on its own; this runs
the rebalance around them, through the library as `orchestrator rebalance --yes` does
(`providers_for`, then under the environment's lock on a SQLite state database in a
throwaway GPUFLEET_HOME: `prepare` = observe + plan + policy gate + steps, then `apply`),
on one spec of 125 EKS node groups (5 clusters of 25), 125 GKE node pools (one zone each),
125 AKS agent pools (5 clusters of 25) and 125 on-prem sites (one labelled node each in
the Kubernetes fake); two 7-8B models, users in 5 metros, max_rtt_ms 150. Cloud pools
carry per-node rates (`cost_per_hour`) proportional to their GPU's throughput, +-15 %,
so the plan spreads over all three clouds instead of filling the cheapest one first. It
plans with the CLI's options; on this spec the default candidate pruning leaves demand
unserved, so the planner solves again over every eligible pool (included in the solver time).
Three rebalances, each with its own providers (a fresh CLI process):

1. empty fleet -> plan: every cloud pool the plan uses grows, every replica starts;
2. the same spec again: nothing to do, so only observation is paid;
3. demand halved: replicas stop (ScaleDown) and pools shrink.

Per rebalance: observe (wall seconds, requests per pool by kind), plan (the solver's own
seconds, pools used, steps by kind), apply (wall seconds, requests per step by kind,
counted where the fakes receive them, with the polls `execute` made). Each count is set
against the fewest calls the step needs (`bench_providers`' documented minimums; the
ScaleUp and ScaleDown ones derived below) as a ratio. The fakes finish every cloud
operation at once and pods are ready after 10 ms, so polls are the fewest a real cloud
needs; wall times are the in-process fakes' (every Azure call pays a TLS handshake) plus
`execute`'s 50 ms poll floor: an upper bound of the client's cost, not cloud latency.
Everything runs on 127.0.0.1.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bench.bench_providers import environment
from orchestrator.catalog.price_catalog import load_price_catalog
from orchestrator.planner import PlanOptions
from orchestrator.providers.azure.provider import aks_pool_name
from orchestrator.providers.base import ResizePool
from orchestrator.providers.kubernetes.models import POOL_LABEL, namespace
from orchestrator import planning
from orchestrator.rebalance import run as rebalance_run
from orchestrator.settings import load_settings
from tests.fakes.fleet_fakes import CloudFakes, cloud_fakes

REPO = Path(__file__).resolve().parent.parent
ENVIRONMENT = "bench-clusters"
PER_KIND = 125
PER_CLUSTER = 25  # within EKS's 30 managed node groups and AKS's 100 agent pools per cluster
RPS = 90.0  # per (model, user region): ~100 cloud pools get nodes
USERS = ["new-york", "chicago", "san-francisco", "london", "frankfurt"]
MODELS = [("llama-8b", "llama-3.1-8b"), ("mistral-7b", "mistral-7b")]
# provider -> (regions, instance type, $/node-hour around which pools are priced: ~$0.50 per req/s of llama-8b)
CLOUDS = {
    "aws": (["us-east-1", "us-east-2", "us-west-2", "eu-central-1", "eu-west-1"], "g5.xlarge", 1.00),
    "gcp": (["us-central1", "us-east4", "us-east1", "europe-west4", "europe-west1"], "g2-standard-8", 0.71),
    "azure": (["eastus", "eastus2", "westus2", "westeurope", "northeurope"], "Standard_NV36ads_A10_v5", 1.47),
}
GKE_ZONES = {"us-central1": "us-central1-a", "us-east4": "us-east4-a", "us-east1": "us-east1-b",
             "europe-west4": "europe-west4-a", "europe-west1": "europe-west1-b"}
SITES = ["new-york", "chicago", "frankfurt", "london", "paris", "dallas", "virginia", "amsterdam", "toronto", "boston",
         "tokyo", "sydney", "sao-paulo", "mumbai", "singapore"]
OPTIONS = PlanOptions(time_limit_s=60.0)
KIND = {"aws": "aws EKS node group", "gcp": "gcp GKE node pool", "azure": "azure AKS agent pool",
        "onprem": "onprem labelled nodes"}
# Fewest calls per pool to observe it: the scaler's read (bench_providers; AKS adds a cluster read
# and a scale-set list per cluster, once per process), or the node list of an on-prem pool, plus
# one pod list for its replicas.
OBSERVE_MIN = {"aws": 2 + 1, "gcp": 2 + 1, "azure": 2 + 2 / PER_CLUSTER + 1, "onprem": 1 + 1}
# Fewest calls per step. resize_pool: bench_providers' "resize until done" (EKS 3, GKE one zone 6,
# AKS 7). scale_up: read, namespace, the gateway key's Secret, the model's Service, Deployment,
# read ready = 6 (bench_providers' 5: no key there). scale_down to 0: read,
# delete Service, delete Deployment, list pods (gone at once here) = 4; to n > 0: read, scale, list = 3.
STEP_MIN = {"resize_pool aws": 3, "resize_pool gcp": 6, "resize_pool azure": 7, "resize_pool onprem": 1,
            "scale_up": 6, "scale_down to 0": 4, "scale_down to n>0": 3}


def pool_docs() -> list[dict]:
    rng = random.Random(11)
    pools = []
    for provider, (regions, instance_type, rate) in CLOUDS.items():
        for i in range(PER_KIND):
            region = regions[i // PER_CLUSTER]
            pools.append({"name": f"{provider[:3]}-{i:03d}", "provider": provider, "region": region,
                          "instance_type": instance_type, "cluster": f"{provider}-{region}", "min_nodes": 0,
                          "max_nodes": rng.randint(2, 4), "cost_per_hour": round(rate * rng.uniform(0.85, 1.15), 3)}
                         | ({"zone": GKE_ZONES[region]} if provider == "gcp" else {}))
    for i in range(PER_KIND):
        pools.append({"name": f"onp-{i:03d}", "provider": "onprem", "region": f"dc-{i:03d}", "location": SITES[i % len(SITES)],
                      "gpu": "L4", "gpus_per_node": 1, "cost_per_hour": 0.3, "capacity": "owned", "min_nodes": 1,
                      "max_nodes": 1, "cluster": f"onprem-{i // PER_CLUSTER}", "node": {"cpus": 16, "memory_gb": 64}})
    return pools


def write_spec(path: Path, rps: float) -> Path:
    path.write_text(yaml.safe_dump({
        "environment": ENVIRONMENT,
        "pools": pool_docs(),
        "models": [{"name": name, "architecture": arch, "source": f"hf:bench/{name}",
                    "slo": {"ttft_p95_ms": 2000, "tpot_p95_ms": 100, "max_rtt_ms": 150}} for name, arch in MODELS],
        "demand": [{"model": name, "region": region, "requests_per_second": rps, "input_tokens": 500, "output_tokens": 200}
                   for name, _ in MODELS for region in USERS],
        "policies": {"paths": []},
    }))
    return path


def make_pools(fakes: CloudFakes, pools: list[dict]) -> None:
    """Each cloud pool as the stacks would leave it, empty; each on-prem site's node, labelled."""
    clients = {(service, region): fakes.aws_client(service, region)
               for service in ("ec2", "eks", "autoscaling") for region in CLOUDS["aws"][0]}
    for region in CLOUDS["aws"][0]:
        clients[("ec2", region)].create_launch_template(
            LaunchTemplateName="gpu", LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "g5.xlarge"})
        clients[("eks", region)].create_cluster(name=f"aws-{region}", roleArn="arn:aws:iam::123456789012:role/eks",
                                               resourcesVpcConfig={"subnetIds": []})
    for p in pools:
        if p["provider"] == "aws":
            eks, autoscaling = clients[("eks", p["region"])], clients[("autoscaling", p["region"])]
            group = eks.create_nodegroup(clusterName=p["cluster"], nodegroupName=p["name"], subnets=["subnet-1"],
                                         nodeRole="arn:aws:iam::123456789012:role/node",
                                         scalingConfig={"minSize": 0, "maxSize": p["max_nodes"], "desiredSize": 0})["nodegroup"]
            autoscaling.create_auto_scaling_group(
                AutoScalingGroupName=group["resources"]["autoScalingGroups"][0]["name"], MinSize=0, MaxSize=p["max_nodes"],
                DesiredCapacity=0, LaunchTemplate={"LaunchTemplateName": "gpu"}, AvailabilityZones=[f"{p['region']}a"])
        elif p["provider"] == "gcp":
            fakes.gcp.add_node_pool(p["region"], p["cluster"], p["name"], [p["zone"]])
        elif p["provider"] == "azure":
            fakes.azure.add_agent_pool(f"rg-{p['cluster']}", p["cluster"], aks_pool_name(p["name"]))
        else:
            fakes.kube.add_node(f"{p['name']}-node", {POOL_LABEL: p["name"]})


class Requests:
    """Requests the fakes received, attributed to pool kinds (Kubernetes calls by namespace or node label)."""

    def __init__(self, fakes: CloudFakes, pools: list[dict]) -> None:
        self.fakes = {"aws": fakes.aws, "gcp": fakes.gcp, "azure": fakes.azure, "kube": fakes.kube}
        self.provider = {p["name"]: p["provider"] for p in pools}
        self.by_namespace = {namespace(p["name"]): p["provider"] for p in pools}

    def mark(self) -> dict[str, int]:
        return {name: len(fake.requests) for name, fake in self.fakes.items()}

    def total(self, since: dict[str, int]) -> int:
        return sum(len(fake.requests) - since[name] for name, fake in self.fakes.items())

    def by_kind(self, since: dict[str, int]) -> Counter:
        counts = Counter({name: len(self.fakes[name].requests) - since[name] for name in ("aws", "gcp", "azure")})
        for request in self.fakes["kube"].requests[since["kube"]:]:
            parts = request.path.split("/")
            if request.path == "/api/v1/nodes":
                counts[self.provider[request.args["labelSelector"].split("=", 1)[1]]] += 1
            elif "namespaces" in parts and len(parts) > parts.index("namespaces") + 1:
                counts[self.by_namespace[parts[parts.index("namespaces") + 1]]] += 1
            else:
                counts["other"] += 1
        return counts


@contextmanager
def timed(module, name: str, seconds: list[float]) -> Iterator[None]:
    """Time each call of `<module>.<name>` (prepare's observe, the planning path's plan_fleet) into `seconds`."""
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            seconds.append(time.perf_counter() - start)

    setattr(module, name, wrapper)
    try:
        yield
    finally:
        setattr(module, name, original)


@dataclass
class StepTally:
    count: int = 0
    requests: int = 0
    polls: int = 0
    seconds: float = 0.0
    by_fake: Counter = field(default_factory=Counter)


def step_kind(step, pools: dict[str, str]) -> str:
    if isinstance(step, ResizePool):
        return f"resize_pool {pools[step.pool]}"
    if step.kind == "scale_down":
        return "scale_down to 0" if step.count == 0 else "scale_down to n>0"
    return step.kind


def rebalance(title: str, spec_path: Path, requests: Requests, pools: list[dict]) -> dict[str, StepTally]:
    """One rebalance as `rebalance_once` runs it (fresh providers, the lock, prepare, apply), measured and printed."""
    from orchestrator.inputs import load_inputs
    from orchestrator.ledger import open_ledger
    from orchestrator.rebalance.execute import StepFailed
    from orchestrator.rebalance.journal import environment_lock
    from orchestrator.rebalance.run import apply, prepare, providers_for, refused_pool, resume
    from orchestrator.state import state_url

    print(f"\n{title}")
    settings = load_settings()
    catalog = load_price_catalog()
    fleet, inputs = load_inputs(spec_path, catalog, settings.profiles_dir)
    url = state_url(settings, inputs.environment, fleet.state.url)
    store = open_ledger(settings, inputs.environment, fleet.state.url)
    providers = providers_for(fleet, inputs.environment, store, url, settings)
    kinds = {p["name"]: p["provider"] for p in pools}
    tallies: dict[str, StepTally] = defaultdict(StepTally)
    observe_s: list[float] = []
    plan_s: list[float] = []
    try:
        with environment_lock(store, inputs.environment):
            resume(store, inputs.environment, providers, step_timeout_s=600)
            held: frozenset[str] = frozenset()
            while True:
                before = requests.mark()
                start = time.perf_counter()
                with timed(rebalance_run, "observe", observe_s), timed(planning, "plan_fleet", plan_s):
                    move = prepare(fleet, inputs, catalog, providers, OPTIONS, REPO, held)
                prepare_s = time.perf_counter() - start
                print_observe(requests, before, observe_s[-1])
                print_plan(move, plan_s[-1], prepare_s, kinds)
                if not move.steps:
                    return tallies
                steps = [step_kind(s, kinds) for s in move.steps]
                last = [requests.mark(), time.perf_counter()]

                def waited(seq: int, step, note: str) -> None:
                    tallies[steps[seq]].polls += 1

                def done(seq: int, step) -> None:
                    tally = tallies[steps[seq]]
                    now = time.perf_counter()
                    tally.count += 1
                    tally.requests += requests.total(last[0])
                    tally.by_fake.update({k: len(f.requests) - last[0][k] for k, f in requests.fakes.items()})
                    tally.seconds += now - last[1]
                    last[:] = [requests.mark(), now]

                before, start = requests.mark(), time.perf_counter()
                try:
                    apply(store, move, providers, step_timeout_s=600, on_step=done, on_wait=waited)
                except StepFailed as exc:
                    pool = refused_pool(exc)
                    if pool is None or pool in held:
                        raise
                    print(f"  {pool} refused to grow: re-planning with it held")
                    held |= {pool}
                    continue
                print_apply(tallies, requests.total(before), time.perf_counter() - start)
                return tallies
    finally:
        store.close()


def print_observe(requests: Requests, before: dict[str, int], seconds: float) -> None:
    counts = requests.by_kind(before)
    total = sum(counts.values())
    print(f"  observe  {seconds:6.1f} s   {total} requests   {total / (4 * PER_KIND):5.2f} per pool")
    for provider, label in KIND.items():
        per_pool = counts[provider] / PER_KIND
        minimum = OBSERVE_MIN[provider]
        print(f"    {label:<24} {per_pool:5.2f} per pool   minimum {minimum:5.2f}   ratio {per_pool / minimum:5.2f}")
    if counts["other"]:
        print(f"    (unattributed Kubernetes requests: {counts['other']})")


def print_plan(move, solver_s: float, prepare_s: float, kinds: dict[str, str]) -> None:
    target = move.target
    grown = Counter(kinds[p.pool] for p in target.pools if p.nodes > move.current.nodes.get(p.pool, 0))
    with_nodes = Counter(kinds[p.pool] for p in target.pools if p.nodes and kinds[p.pool] != "onprem")
    hosting = Counter(kinds[r.pool] for r in target.replicas if r.count)
    hosting_pools = Counter(kinds[pool] for pool in {r.pool for r in target.replicas if r.count})
    steps = Counter(step_kind(s, kinds) for s in move.steps)
    solver = target.solver
    print(f"  plan     solver {solver_s:5.2f} s ({solver.status}, gap {solver.mip_gap or 0:.2%}); prepare in all "
          f"{prepare_s:5.1f} s; ${move.cost_before:,.2f}/h -> ${move.cost_after:,.2f}/h, unserved {len(target.unserved)}")
    print("           cloud pools with nodes: " + ", ".join(f"{k} {with_nodes[k]}" for k in ("aws", "gcp", "azure"))
          + "; pools with replicas: " + ", ".join(f"{k} {hosting_pools[k]}" for k in KIND)
          + f"; (model, pool) replica sets {sum(hosting.values())}, replicas {sum(r.count for r in target.replicas)}")
    print(f"           steps {len(move.steps)}: " + (", ".join(f"{k} {v}" for k, v in sorted(steps.items())) or "none"))


def print_apply(tallies: dict[str, StepTally], total: int, seconds: float) -> None:
    steps = sum(t.count for t in tallies.values())
    print(f"  apply    {seconds:6.1f} s   {total} requests   {steps} steps   {total / max(steps, 1):5.2f} per step")
    for kind, tally in sorted(tallies.items()):
        per_step = tally.requests / tally.count
        minimum = STEP_MIN[kind]
        fakes = ", ".join(f"{k} {v / tally.count:.2f}" for k, v in tally.by_fake.items() if v)
        print(f"    {kind:<18} {tally.count:4d} steps  {per_step:5.2f} requests/step   minimum {minimum:2d}   "
              f"ratio {per_step / minimum:5.2f}   polls/step {tally.polls / tally.count:4.2f}   "
              f"{tally.seconds / tally.count:5.2f} s/step   ({fakes})")


def main() -> None:
    print(__doc__.splitlines()[0])
    print(f"{4 * PER_KIND} pools ({PER_KIND} each: {', '.join(KIND.values())}), {len(MODELS)} models, "
          f"{len(USERS)} user metros x {RPS:g} req/s per model; requests counted at the fakes (127.0.0.1)")
    pools = pool_docs()
    contexts = sorted({p["cluster"] for p in pools})
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="gpufleet-bench-") as tmp:
        directory = Path(tmp)
        fakes = stack.enter_context(cloud_fakes(directory, contexts, operation_s=0))
        fakes.kube.ready_delay_s, fakes.kube.terminate_delay_s = 0.01, 0.0
        stack.enter_context(environment(fakes.env | {"GPUFLEET_HOME": str(directory / "home"), "GPUFLEET_API_KEY": ""}))
        start = time.perf_counter()
        make_pools(fakes, pools)
        print(f"setup: pools made in the fakes in {time.perf_counter() - start:.1f} s")
        requests = Requests(fakes, pools)
        spec = write_spec(directory / "clusters.yaml", RPS)
        rebalance("1. empty fleet -> plan (grow pools, start replicas)", spec, requests, pools)
        rebalance("2. the same spec again (nothing to do: observation only)", spec, requests, pools)
        spec = write_spec(directory / "clusters.yaml", RPS / 2)
        rebalance(f"3. demand halved to {RPS / 2:g} req/s (stop replicas, shrink pools)", spec, requests, pools)
        print(f"\nwhole run {time.perf_counter() - start:.0f} s after setup began")


if __name__ == "__main__":
    main()
