# Where a model may run and whose users it may serve from where.
#   * Demand from a residency area (data.gpufleet.residency_areas, e.g. the EU: continent
#     europe) is served only from pools in that area, or from on-prem sites when the area
#     allows it.
#   * A model runs only in the providers, regions and continents its spec allows
#     (models[].residency, passed as data.gpufleet.models).
package placement.residency

import data.lib.gpufleet
import data.placement.lib
import rego.v1

deny contains gpufleet.violation("placement.residency", route.model, message) if {
	some route in input.routes
	route.share > 0
	user_continent := lib.continent_of[route.region]
	some area_name, area in data.gpufleet.residency_areas
	user_continent in area.continents
	pool := lib.pools[route.pool]
	not serves(area, pool)
	message := sprintf(
		"users in %s (%s area) are routed to pool %s in %s (%s) for %s of their requests. To fix: give the model capacity in the %s area (or on-prem) within its max_rtt_ms and re-plan",
		[route.region, area_name, pool.pool, pool.region, object.get(pool, "continent", "unknown continent"), gpufleet.percent(route.share), area_name],
	)
}

deny contains gpufleet.violation("placement.residency", model, message) if {
	some model, pools in lib.hosting
	rules := data.gpufleet.models[model].residency
	some pool_name, _ in pools
	pool := lib.pools[pool_name]
	some field in ["providers", "regions", "continents"]
	allowed := object.get(rules, field, [])
	count(allowed) > 0
	not within(field, allowed, pool)
	message := sprintf(
		"runs in pool %s although its residency allows only %s %s. To fix: re-plan, or widen models[].residency.%s in the spec",
		[pool_name, field, concat(", ", allowed), field],
	)
}

# `local` (this machine, the embedded default) is no place residency could be about.
warn contains gpufleet.violation("placement.residency", row.region, message) if {
	some row in input.demand
	row.region != "local"
	object.get(row, "continent", null) == null
	message := sprintf("user region of %s demand has no known continent, so residency cannot be checked for it. To fix: name a known region or metro (docs/latency.md)", [row.model])
}

serves(area, pool) if pool.continent in area.continents

serves(area, pool) if {
	pool.provider == "onprem"
	area.allow_onprem
}

within("providers", providers, pool) if pool.provider in providers

within("regions", patterns, pool) if {
	some pattern in patterns
	glob.match(pattern, null, pool.region)
}

within("continents", continents, pool) if object.get(pool, "continent", null) in continents
