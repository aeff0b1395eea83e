# Each model keeps its minimum replicas, spread over failure domains so one outage cannot
# take it down (models[].min_replicas and models[].spread, passed as data.gpufleet.models;
# the plan's own models rows count too).
package placement.replicas

import data.lib.gpufleet
import data.placement.lib
import rego.v1

deny contains gpufleet.violation("placement.replicas", model, message) if {
	some model in lib.models
	needed := min_replicas(model)
	placed := lib.replicas(model)
	placed < needed
	message := sprintf(
		"has %v replicas, fewer than its min_replicas of %v. To fix: add capacity it may run on (max_nodes, pools), or lower min_replicas",
		[placed, needed],
	)
}

deny contains gpufleet.violation("placement.replicas", model, message) if {
	some model in lib.models
	spread := data.gpufleet.models[model].spread
	spread != null
	domains := {domain(lib.pools[pool], spread.across) | some pool, _ in object.get(lib.hosting, model, {})}
	count(domains) < spread.min
	message := sprintf(
		"runs in %v %s(s) (%s), fewer than its spread of %v. To fix: allow it pools in more %ss, or lower spread.min",
		[count(domains), spread.across, concat(", ", sort(domains)), spread.min, spread.across],
	)
}

min_replicas(model) := max(array.concat(
	[row.min_replicas | some row in input.models; row.model == model],
	[n | n := data.gpufleet.models[model].min_replicas],
))

domain(pool, "provider") := pool.provider

domain(pool, "region") := sprintf("%s:%s", [pool.provider, pool.region])

domain(pool, "zone") := sprintf("%s:%s", [pool.provider, zone_of(pool)])

domain(pool, "pool") := pool.pool

# A pool without a zone is its own region's zone.
zone_of(pool) := pool.zone if is_string(pool.zone)

zone_of(pool) := pool.region if not is_string(object.get(pool, "zone", null))
