# A small placement, as `orchestrator policy` hands it to the rules (the planner's JSON
# with each pools and demand row's continent), that passes every placement rule with
# `models` and `budget` as data. Tests change one thing with json.patch or `with`.
package placement.test_fixtures

import rego.v1

plan := {
	"environment": "hybrid",
	"cost_per_hour": 50.0,
	"lower_bound_per_hour": 49.0,
	"solver": {"name": "highs", "status": "optimal", "seconds": 0.1, "mip_gap": 0.0},
	"models": [{"model": "chat", "min_replicas": 2, "max_rtt_ms": 150, "ttft_p95_ms": 800, "tpot_p95_ms": 60}],
	"demand": [
		{"model": "chat", "region": "frankfurt", "rps": 10, "input_tokens": 1000, "output_tokens": 250, "continent": "europe"},
		{"model": "chat", "region": "virginia", "rps": 6, "input_tokens": 1000, "output_tokens": 250, "continent": "north-america"},
	],
	"pools": [
		{"pool": "fra-dc1", "provider": "onprem", "region": "fra-dc1", "zone": null, "gpu": "A100-80GB", "capacity": "owned", "gpus_per_node": 8, "min_nodes": 1, "max_nodes": 4, "cost_per_node_hour": 10.0, "nodes": 1, "cost_per_hour": 10.0, "continent": "europe"},
		{"pool": "aws-use1", "provider": "aws", "region": "us-east-1", "zone": null, "gpu": "H100", "capacity": "on_demand", "gpus_per_node": 8, "min_nodes": 0, "max_nodes": 4, "cost_per_node_hour": 30.0, "nodes": 1, "cost_per_hour": 30.0, "continent": "north-america"},
		{"pool": "gcp-euw4-spot", "provider": "gcp", "region": "europe-west4", "zone": "europe-west4-a", "gpu": "L4", "capacity": "spot", "gpus_per_node": 4, "min_nodes": 0, "max_nodes": 8, "cost_per_node_hour": 10.0, "nodes": 1, "cost_per_hour": 10.0, "continent": "europe"},
		{"pool": "gcp-usc1-spot", "provider": "gcp", "region": "us-central1", "zone": "us-central1-a", "gpu": "L4", "capacity": "spot", "gpus_per_node": 4, "min_nodes": 0, "max_nodes": 8, "cost_per_node_hour": 10.0, "nodes": 0, "cost_per_hour": 0.0, "continent": "north-america"},
	],
	"capacity": [
		{"model": "chat", "pool": "fra-dc1", "gpus_per_replica": 1, "rps_per_replica": 2.0},
		{"model": "chat", "pool": "aws-use1", "gpus_per_replica": 1, "rps_per_replica": 2.0},
		{"model": "chat", "pool": "gcp-euw4-spot", "gpus_per_replica": 1, "rps_per_replica": 1.0},
		{"model": "chat", "pool": "gcp-usc1-spot", "gpus_per_replica": 1, "rps_per_replica": 1.0},
	],
	"latency": [],
	"replicas": [
		{"model": "chat", "pool": "fra-dc1", "count": 4},
		{"model": "chat", "pool": "aws-use1", "count": 3},
		{"model": "chat", "pool": "gcp-euw4-spot", "count": 2},
		{"model": "chat", "pool": "gcp-usc1-spot", "count": 0},
	],
	"routes": [
		{"model": "chat", "region": "frankfurt", "pool": "fra-dc1", "share": 0.8, "rtt_ms": 2.3},
		{"model": "chat", "region": "frankfurt", "pool": "gcp-euw4-spot", "share": 0.2, "rtt_ms": 8.0},
		{"model": "chat", "region": "frankfurt", "pool": "aws-use1", "share": 0, "rtt_ms": 90.0},
		{"model": "chat", "region": "virginia", "pool": "aws-use1", "share": 1.0, "rtt_ms": 3.0},
	],
	"unserved": [],
	"explain": [],
}

# data.gpufleet.models, as built from the spec's models.
models := {"chat": {
	"min_replicas": 2,
	"spread": {"across": "provider", "min": 2},
	"residency": {"providers": [], "regions": [], "continents": []},
}}

subjects(violations) := {v.subject | some v in violations}
