"""Planning instances generated from the real price catalog and request traces.

Pools are drawn from the bundled catalog (real instance types, regions and prices); demand
takes its request rates and token mixes from the peak 5-minute windows of the public Azure
code trace and the Mooncake trace (../shared/data/llm_traces) when present, scaled per
(model, region); user regions are real metros and cloud regions.
"""

from __future__ import annotations

import random
from functools import cache

import yaml

from orchestrator.catalog.price_catalog import load_price_catalog
from orchestrator.latency.regions import load_regions
from orchestrator.settings import load_settings

ARCHITECTURES = ["llama-3.1-8b", "mistral-7b", "qwen2.5-32b", "gemma-2-27b", "llama-3.3-70b", "qwen2.5-72b"]
FALLBACK_MIXES = [(4.60, 1917, 29), (4.15, 19560, 79)]  # docs/demand.md: peak 5-min windows of the two traces


@cache
def trace_mixes() -> list[tuple[float, int, int]]:
    """(req/s, mean input tokens, mean output tokens) of each bundled trace's peak 5-minute window."""
    from orchestrator.demand import derive_demand

    traces = load_settings().shared_data / "llm_traces"
    files = [traces / "azure_llm_2023_code.csv", traces / "mooncake_fast25_synthetic_trace.jsonl"]
    if not all(f.exists() for f in files):
        return FALLBACK_MIXES
    mixes = []
    for path in files:
        d = derive_demand(path, model="m", region="r")
        mixes.append((d.requests_per_second, round(d.input_tokens_mean), round(d.output_tokens_mean)))
    return mixes


def generated_spec(pools: int, models: int, regions: int, seed: int = 7) -> str:
    """A fleet spec (YAML) of `pools` cloud pools, `models` models and demand from `regions` user regions."""
    rng = random.Random(seed)
    offers = [o for o in load_price_catalog().offers if o.on_demand_per_hour and o.gpu_memory_gb >= 24]
    chosen = rng.sample(offers, pools)
    # users live where the clouds are (every user region has pools nearby), plus metros
    places = sorted({f"{o.provider}:{o.region}" for o in chosen}) + sorted(n for n in load_regions().names() if ":" not in n and n != "local")
    rng.shuffle(places)
    user_regions = places[:regions]
    mixes = trace_mixes()
    mix_of = [mixes[j % len(mixes)] for j in range(models)]
    doc = {
        "pools": [
            {"name": f"p{i}", "provider": o.provider, "region": o.region, "zone": o.zone, "instance_type": o.instance_type,
             "capacity": "spot" if o.spot_per_hour and rng.random() < 0.3 else "on_demand", "max_nodes": rng.randint(2, 16)}
            for i, o in enumerate(chosen)
        ],
        "models": [
            {"name": f"m{j}", "architecture": ARCHITECTURES[j % len(ARCHITECTURES)], "source": f"s3://models/m{j}/",
             "slo": {"ttft_p95_ms": 1000 + min(mix_of[j][1], 8000) // 4, "tpot_p95_ms": 100, "max_rtt_ms": 150}}
            for j in range(models)
        ],
        "demand": [],
    }
    for j in range(models):
        rps, tokens_in, tokens_out = mix_of[j]
        for region in rng.sample(user_regions, min(3, regions)):
            doc["demand"].append({"model": f"m{j}", "region": region, "requests_per_second": round(rps * rng.uniform(0.2, 3), 3),
                                  "input_tokens": min(tokens_in, 8000), "output_tokens": tokens_out})
    return yaml.safe_dump(doc)
