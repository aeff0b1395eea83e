# Lookups over one placement (the planner's JSON, with `continent` added to each pools and
# demand row by `orchestrator policy`), shared by the placement rules.
package placement.lib

import rego.v1

pools[pool.pool] := pool if some pool in input.pools

# Replicas placed, by model and pool (rows with count 0 are no placement).
hosting[model][pool] := row.count if {
	some row in input.replicas
	row.count > 0
	model := row.model
	pool := row.pool
}

replicas(model) := sum([n | some n in object.get(hosting, model, {})])

rps_per_replica[row.model][row.pool] := row.rps_per_replica if some row in input.capacity

# Every model the plan or the spec names.
models := {row.model | some row in input.models} | {name | some name, _ in data.gpufleet.models}

# A user region's continent (from the demand rows; null when unknown).
continent_of[row.region] := row.continent if some row in input.demand
