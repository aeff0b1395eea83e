"""Resolving a spec against the catalogs: prices, replica sizes, residency, token mix, RTTs."""

from __future__ import annotations

import textwrap

import pytest

from orchestrator.catalog.price_catalog import load_price_catalog
from orchestrator.errors import SpecError
from orchestrator.inputs import resolve_inputs
from orchestrator.spec import parse_spec

SPEC = textwrap.dedent("""\
    pools:
      - {name: l4, provider: aws, region: us-east-1, instance_type: g6.12xlarge, capacity: spot, max_nodes: 2}
      - {name: h100, provider: gcp, region: us-central1, zone: us-central1-a, instance_type: a3-highgpu-8g, max_nodes: 1}
      - {name: fra, provider: onprem, region: fra-dc1, location: frankfurt, gpu: A100-80GB, gpus_per_node: 8,
         cost_per_hour: 10, capacity: owned, min_nodes: 1, max_nodes: 2, node: {cpus: 256, memory_gb: 2048}}
    models:
      - name: m8b
        architecture: llama-3.1-8b
        source: s3://b/m8b/
        slo: {ttft_p95_ms: 800, tpot_p95_ms: 60, max_rtt_ms: 120}
      - name: m70b
        architecture: llama-3.3-70b
        source: s3://b/m70b/
        slo: {ttft_p95_ms: 2000, tpot_p95_ms: 100, max_rtt_ms: 150}
        residency: {continents: [europe]}
    demand:
      - {model: m8b, region: virginia, requests_per_second: 30, input_tokens: 1000, output_tokens: 100}
      - {model: m8b, region: frankfurt, requests_per_second: 10, input_tokens: 3000, output_tokens: 500}
      - {model: m70b, region: frankfurt, requests_per_second: 2, input_tokens: 1000, output_tokens: 300}
""")


@pytest.fixture(scope="module")
def catalog():
    return load_price_catalog()


def resolve(text: str, catalog):
    return resolve_inputs(parse_spec(text, "t.yaml"), catalog, "t.yaml")


def test_pools_are_priced_from_catalog_or_spec(catalog) -> None:
    inputs = resolve(SPEC, catalog)
    pools = {p.pool: p for p in inputs.pools}
    assert pools["l4"].cost_per_node_hour == pytest.approx(catalog.offer("aws", "g6.12xlarge", "us-east-1").spot_per_hour, abs=1e-5)
    assert (pools["l4"].gpu, pools["l4"].gpus_per_node) == ("L4", 4)
    assert pools["h100"].cost_per_node_hour == pytest.approx(catalog.offer("gcp", "a3-highgpu-8g", "us-central1", "us-central1-a").on_demand_per_hour, abs=1e-5)
    assert (pools["fra"].cost_per_node_hour, pools["fra"].price_source) == (10, "spec (owned, amortized)")


def test_negotiated_price_overrides_catalog(catalog) -> None:
    text = SPEC.replace("capacity: spot, max_nodes: 2}", "capacity: spot, max_nodes: 2, cost_per_hour: 1.5}")
    pool = resolve(text, catalog).pools[0]
    assert (pool.cost_per_node_hour, pool.price_source) == (1.5, "spec (negotiated)")


def test_replica_size_is_chosen_per_gpu_for_rps_per_gpu(catalog) -> None:
    cells = {(c.model, c.pool): c for c in resolve(SPEC, catalog).capacity}
    # one L4 holds an 8B model but cannot meet a 60 ms TPOT; two can
    assert cells["m8b", "l4"].gpus_per_replica == 2 and cells["m8b", "l4"].rps_per_replica > 0
    assert cells["m8b", "h100"].gpus_per_replica == 1
    assert cells["m8b", "h100"].rps_per_replica > cells["m8b", "l4"].rps_per_replica


def test_fixed_gpus_per_replica_is_honoured(catalog) -> None:
    text = SPEC.replace("    source: s3://b/m8b/\n", "    source: s3://b/m8b/\n    gpus_per_replica: 4\n")
    cells = {(c.model, c.pool): c for c in resolve(text, catalog).capacity}
    assert cells["m8b", "l4"].gpus_per_replica == 4 and cells["m8b", "h100"].gpus_per_replica == 4


def test_residency_limits_capacity_pairs(catalog) -> None:
    pairs = {(c.model, c.pool) for c in resolve(SPEC, catalog).capacity}
    assert ("m70b", "fra") in pairs
    assert ("m70b", "h100") not in pairs and ("m70b", "l4") not in pairs


def test_model_that_fits_no_pool_is_an_error(catalog) -> None:
    text = SPEC.replace("residency: {continents: [europe]}", "residency: {providers: [aws]}")
    with pytest.raises(SpecError) as caught:
        resolve(text, catalog)
    assert [i.path for i in caught.value.issues] == ["models[1]"]
    assert "fits no pool's GPUs" in caught.value.issues[0].message and "4x L4 (24 GB)" in caught.value.issues[0].message


def test_every_user_region_gets_an_rtt_to_every_pool(catalog) -> None:
    inputs = resolve(SPEC, catalog)
    rtt = {(l.region, l.pool): l.rtt_ms for l in inputs.latency}
    assert len(rtt) == 2 * 3
    assert rtt["virginia", "l4"] < 20 < rtt["virginia", "fra"]
    assert rtt["frankfurt", "fra"] < 10


def test_errors_from_all_sections_come_together(catalog) -> None:
    text = (SPEC.replace("g6.12xlarge", "g6.12xlarg").replace("architecture: llama-3.3-70b", "architecture: llama-9")
            .replace("region: virginia", "region: atlantis"))
    with pytest.raises(SpecError) as caught:
        resolve(text, catalog)
    assert {i.path for i in caught.value.issues} == {"pools[0].instance_type", "models[1].architecture", "demand[0].region"}


def test_local_users_with_remote_pools_are_located(catalog) -> None:
    text = SPEC.replace("region: virginia", "region: local")
    with pytest.raises(SpecError) as caught:
        resolve(text, catalog)
    assert [i.path for i in caught.value.issues] == ["demand[0].region"]
    assert "undefined" in caught.value.issues[0].message
