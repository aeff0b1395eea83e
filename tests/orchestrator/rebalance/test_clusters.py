"""`orchestrator rebalance` across AWS, GCP, Azure and on-prem, through the real SDK clients against the fakes.

One spec with an EKS node group, a GKE node pool, an AKS agent pool and an on-prem site,
users near each: the CLI observes every pool, plans, grows the cloud pools, starts the
Deployments, and a second run finds nothing to do. A cloud that refuses to grow (quota)
makes the CLI re-plan with that pool held at the nodes it has.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from orchestrator.providers.azure.provider import aks_pool_name
from orchestrator.providers.kubernetes.models import POOL_LABEL, deployment_name, namespace
from tests.conftest import run_cli
from tests.fakes.fleet_fakes import CloudFakes, cloud_fakes

MODEL = "llama-8b"
POOLS = [
    {"name": "aws-use1-l4", "provider": "aws", "region": "us-east-1", "instance_type": "g6.xlarge", "cluster": "eks"},
    {"name": "gcp-ane1-l4", "provider": "gcp", "region": "asia-northeast1", "zone": "asia-northeast1-a",
     "instance_type": "g2-standard-8", "cluster": "gke"},
    {"name": "azure-weu-a10", "provider": "azure", "region": "westeurope", "instance_type": "Standard_NV36ads_A10_v5",
     "cluster": "aks"},
    {"name": "onprem-fra", "provider": "onprem", "region": "fra-dc1", "location": "frankfurt", "gpu": "L4",
     "gpus_per_node": 1, "cost_per_hour": 0.2, "capacity": "owned", "min_nodes": 1, "max_nodes": 1, "cluster": "onprem",
     "node": {"cpus": 16, "memory_gb": 64}},
]
DEMAND = {"us-east-1": 1, "asia-northeast1": 1, "westeurope": 3}


def write_spec(path: Path, routing: dict | None = None) -> Path:
    path.write_text(yaml.safe_dump({
        "environment": "clusters",
        **({"routing": routing} if routing else {}),
        "pools": [{"min_nodes": 0, "max_nodes": 4, "gateway": f"gw.{p['cluster']}.llm.example"} | p for p in POOLS],
        "models": [{"name": MODEL, "architecture": "llama-3.1-8b", "source": "hf:meta-llama/Llama-3.1-8B-Instruct",
                    "slo": {"ttft_p95_ms": 2000, "tpot_p95_ms": 100, "max_rtt_ms": 40}}],
        "demand": [{"model": MODEL, "region": region, "requests_per_second": rps, "input_tokens": 500,
                    "output_tokens": 200} for region, rps in DEMAND.items()],
        "policies": {"paths": []},
    }))
    return path


@pytest.fixture
def clouds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CloudFakes]:
    """The four fakes, each cloud holding an empty node pool named after its spec pool, one on-prem node."""
    with cloud_fakes(tmp_path, ["eks", "gke", "aks", "onprem"]) as fakes:
        for name, value in fakes.env.items():
            monkeypatch.setenv(name, value)
        eks, autoscaling = fakes.aws_client("eks", "us-east-1"), fakes.aws_client("autoscaling", "us-east-1")
        fakes.aws_client("ec2", "us-east-1").create_launch_template(
            LaunchTemplateName="gpu", LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "g6.xlarge"})
        eks.create_cluster(name="eks", roleArn="arn:aws:iam::123456789012:role/eks", resourcesVpcConfig={"subnetIds": []})
        group = eks.create_nodegroup(clusterName="eks", nodegroupName="aws-use1-l4", subnets=["subnet-1"],
                                     nodeRole="arn:aws:iam::123456789012:role/node",
                                     scalingConfig={"minSize": 0, "maxSize": 4, "desiredSize": 0})["nodegroup"]
        autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=group["resources"]["autoScalingGroups"][0]["name"], MinSize=0, MaxSize=4,
            DesiredCapacity=0, LaunchTemplate={"LaunchTemplateName": "gpu"}, AvailabilityZones=["us-east-1a"])
        fakes.gcp.add_node_pool("asia-northeast1", "gke", "gcp-ane1-l4", ["asia-northeast1-a"])
        fakes.azure.add_agent_pool("rg-aks", "aks", aks_pool_name("azure-weu-a10"))
        fakes.kube.add_node("fra-gpu-1", {POOL_LABEL: "onprem-fra"})
        yield fakes


def nodes(fakes: CloudFakes) -> dict[str, int]:
    """Each cloud pool's size as its fake holds it."""
    eks = fakes.aws_client("eks", "us-east-1").describe_nodegroup(clusterName="eks", nodegroupName="aws-use1-l4")
    return {
        "aws-use1-l4": eks["nodegroup"]["scalingConfig"]["desiredSize"],
        "gcp-ane1-l4": sum(m.target_size for m in fakes.gcp.node_pools[("asia-northeast1", "gke", "gcp-ane1-l4")].migs),
        "azure-weu-a10": fakes.azure.agent_pools[("rg-aks", "aks", aks_pool_name("azure-weu-a10"))].scale_set.capacity,
    }


def replicas(fakes: CloudFakes) -> dict[str, int]:
    """Replicas of the model per pool, from the Deployments the Kubernetes fake holds."""
    found = {}
    for pool in POOLS:
        deployment = fakes.kube.deployments.get((namespace(pool["name"]), deployment_name(MODEL)))
        if deployment:
            found[pool["name"]] = deployment["spec"]["replicas"]
    return found


def assert_ledger_baseline_is_plans(spec: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The applied plan is in the ledger with baseline (a) as `plan` computes it (orchestrator.planning), so the report's savings match."""
    from orchestrator.catalog.price_catalog import load_price_catalog
    from orchestrator.inputs import load_inputs
    from orchestrator.planning import planning

    catalog = load_price_catalog()
    fleet, inputs = load_inputs(spec, catalog)
    expected = planning(fleet, inputs, root=Path.cwd()).single_cloud(catalog)
    code, out, err = run_cli(capsys, "spend", "report", "--spec", str(spec), "--format", "json", "--days", "1")
    assert code == 0, err
    savings = json.loads(out)["savings"]
    assert savings["detail"] == expected.detail and savings["baseline_cost_per_hour"] == (expected.cost_per_hour if expected.serves_all else None)


def test_rebalance_grows_every_cloud_and_starts_the_replicas_then_holds(
        clouds: CloudFakes, tmp_path: Path, capsys: pytest.CaptureFixture[str], gpufleet_home: Path) -> None:
    spec = write_spec(tmp_path / "clusters.yaml")
    code, out, err = run_cli(capsys, "rebalance", "--spec", str(spec), "--yes", "--format", "json")
    assert code == 0, err
    move = json.loads(out)
    planned = {p["pool"]: p["nodes_after"] for p in move["pools"]}
    assert move["applied"] is True and {"aws-use1-l4", "gcp-ane1-l4", "azure-weu-a10"} <= {p for p, n in planned.items() if n}
    assert nodes(clouds) == {pool: planned[pool] for pool in nodes(clouds)}
    assert replicas(clouds) == {r["pool"]: r["after"] for r in move["replicas"] if r["after"]}
    assert sum(replicas(clouds).values()) >= len(DEMAND)
    kinds = [s["kind"] for s in move["steps"]]
    assert kinds.index("resize_pool") < kinds.index("scale_up")  # nodes before replicas
    key = (gpufleet_home / "state" / "clusters" / "gateway-api-key").read_text().strip()
    secrets = [body for (_, name), body in clouds.kube.secrets.items() if name == "gpufleet-gateway"]
    assert len(secrets) == len(replicas(clouds)) and key not in out  # each pool's replicas check the gateway key
    assert {ns for ns, _ in clouds.kube.services} == {namespace(pool) for pool in replicas(clouds)}
    assert_ledger_baseline_is_plans(spec, capsys)

    code, out, err = run_cli(capsys, "rebalance", "--spec", str(spec), "--yes", "--format", "json")
    assert code == 0, err
    again = json.loads(out)
    assert again["steps"] == [] and again["applied"] is False


def test_a_pool_over_quota_is_held_and_the_move_re_planned(
        clouds: CloudFakes, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clouds.azure.operations.fail_next({"code": "QuotaExceeded", "message": "Operation could not be completed as it "
                                       "results in exceeding approved standardNVadsA10v5Family Cores quota."})
    spec = write_spec(tmp_path / "clusters.yaml")
    code, out, err = run_cli(capsys, "rebalance", "--spec", str(spec), "--yes")
    assert code == 0, err
    assert "re-planning with azure-weu-a10 held" in err
    assert nodes(clouds)["azure-weu-a10"] == 0 and "azure-weu-a10" not in replicas(clouds)
    assert replicas(clouds).get("onprem-fra", 0) >= 1  # European users now served from the owned site


def test_status_reports_every_pool_and_the_drift_from_the_applied_plan(
        clouds: CloudFakes, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_spec(tmp_path / "clusters.yaml")
    assert run_cli(capsys, "rebalance", "--spec", str(spec), "--yes")[0] == 0
    code, out, err = run_cli(capsys, "status", "--spec", str(spec), "--format", "json")
    assert code == 0, err
    status = json.loads(out)
    assert {p["pool"] for p in status["pools"]} == {p["name"] for p in POOLS}
    assert status["drift"] == [] and status["cost_per_hour"] > 0 and status["gateway"] is None
    assert len(status["replicas"]) == sum(replicas(clouds).values())

    del clouds.kube.deployments[(namespace("gcp-ane1-l4"), deployment_name(MODEL))]  # someone deleted it
    clouds.kube.pods.pop((namespace("gcp-ane1-l4"), deployment_name(MODEL)))
    code, out, err = run_cli(capsys, "status", "--spec", str(spec), "--format", "json")
    assert json.loads(out)["drift"] == [{"kind": "replicas", "model": MODEL, "pool": "gcp-ane1-l4", "planned": 1,
                                         "running": 0, "healthy": 0}]
    code, out, err = run_cli(capsys, "rebalance", "--spec", str(spec), "--yes", "--format", "json")
    assert code == 0 and [s["kind"] for s in json.loads(out)["steps"]] == ["scale_up"]  # restored


def test_the_applied_plans_shares_become_weighted_route53_records(
        clouds: CloudFakes, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    route53 = clouds.aws_client("route53", "us-east-1")
    zone = route53.create_hosted_zone(Name="llm.example", CallerReference="clusters")["HostedZone"]["Id"].split("/")[-1]
    spec = write_spec(tmp_path / "clusters.yaml", {"dns": {"provider": "route53", "zone_id": zone, "domain": "llm.example"}})
    code, out, err = run_cli(capsys, "rebalance", "--spec", str(spec), "--yes", "--format", "json")
    assert code == 0, err
    records = route53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
    weighted = {(r["Name"].rstrip("."), r["SetIdentifier"]): (r["Weight"], r["ResourceRecords"][0]["Value"])
                for r in records if "SetIdentifier" in r}
    assert weighted[(f"{MODEL}.us-east-1.llm.example", "aws-use1-l4")] == (100, "gw.eks.llm.example")
    assert weighted[(f"{MODEL}.asia-northeast1.llm.example", "gcp-ane1-l4")] == (100, "gw.gke.llm.example")
    europe = {pool: weight for (name, pool), (weight, _) in weighted.items() if name.startswith(f"{MODEL}.westeurope.")}
    assert sum(europe.values()) == 100 and set(europe) <= {"azure-weu-a10", "onprem-fra"}
    assert "route:" in err


class Crash(BaseException):
    """The process dies (not an error anything catches)."""


def first_move(spec: Path):
    """The move a first rebalance of `spec` makes, its providers and its state database."""
    from orchestrator.catalog.price_catalog import load_price_catalog
    from orchestrator.inputs import load_inputs
    from orchestrator.planner import PlanOptions
    from orchestrator.rebalance.run import prepare, providers_for
    from orchestrator.settings import load_settings
    from orchestrator.state import open_state, state_url

    settings = load_settings()
    fleet, inputs = load_inputs(spec, load_price_catalog())
    url = state_url(settings, inputs.environment, None)
    store = open_state(url)
    providers = providers_for(fleet, inputs.environment, store, url, settings)
    return prepare(fleet, inputs, load_price_catalog(), providers, PlanOptions(), Path.cwd()), providers, store


@pytest.mark.parametrize("crash_after", range(7))
def test_a_rebalance_killed_after_any_step_is_finished_by_the_next_without_doubling(
        clouds: CloudFakes, tmp_path: Path, capsys: pytest.CaptureFixture[str], crash_after: int) -> None:
    from orchestrator.rebalance.journal import environment_lock
    from orchestrator.rebalance.run import apply

    spec = write_spec(tmp_path / "clusters.yaml")
    move, providers, store = first_move(spec)
    assert len(move.steps) == 7

    def die(seq: int, _step) -> None:
        if seq == crash_after:
            raise Crash

    with pytest.raises(Crash), environment_lock(store, "clusters"):
        apply(store, move, providers, step_timeout_s=30, on_step=die)
    code, out, err = run_cli(capsys, "rebalance", "--spec", str(spec), "--yes", "--format", "json")
    assert code == 0, err
    assert "resumed and finished run 1" in err  # after the last step too: the run was not yet marked done
    assert json.loads(out)["steps"] == []  # resumed to the target: nothing left to move
    assert nodes(clouds) == {p.pool: p.nodes for p in move.target.pools if p.pool in nodes(clouds)}
    assert replicas(clouds) == {r.pool: r.count for r in move.target.replicas if r.count}
    creates = [r for r in clouds.kube.requests if r.method == "POST" and r.path.endswith("/deployments")]
    assert len(creates) == len(replicas(clouds)), "each Deployment created once"
    assert clouds.aws.count("POST", "/update-config") == 1, "the EKS node group resized once"


def test_watch_moves_only_for_a_saving_over_its_threshold(
        clouds: CloudFakes, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_spec(tmp_path / "clusters.yaml")
    assert run_cli(capsys, "rebalance", "--spec", str(spec), "--yes")[0] == 0
    DEMAND["westeurope"] = 0.5  # less demand in Europe: the owned site alone would do, a small saving
    try:
        write_spec(spec)
        code, _, err = run_cli(capsys, "rebalance", "--spec", str(spec), "--watch", "--iterations", "1",
                               "--min-saving-usd", "1000")
        assert code == 0 and "no move: saving" in err and "under --min-saving-usd" in err
        assert nodes(clouds)["azure-weu-a10"] == 1  # nothing moved
        code, _, err = run_cli(capsys, "rebalance", "--spec", str(spec), "--watch", "--iterations", "1",
                               "--min-saving-usd", "0.5")
        assert code == 0 and "applied run" in err
        assert nodes(clouds)["azure-weu-a10"] == 0 and "azure-weu-a10" not in replicas(clouds)
    finally:
        DEMAND["westeurope"] = 3
