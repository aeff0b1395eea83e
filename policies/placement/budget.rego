# A plan costs no more than the environment's budget (data.gpufleet.budget_usd_per_hour,
# from budget.usd_per_hour). The cost is re-added from the pools, not taken on trust.
package placement.budget

import data.lib.gpufleet
import rego.v1

cost := max([input.cost_per_hour, sum([c | some pool in input.pools; c := pool.nodes * pool.cost_per_node_hour])])

budget := data.gpufleet.budget_usd_per_hour

deny contains gpufleet.violation("placement.budget", input.environment, message) if {
	is_number(budget)
	cost > budget + 1e-6
	message := sprintf(
		"plan costs %s/h, over the budget of %s/h. To fix: raise budget.usd_per_hour, lower min_replicas or demand, or add cheaper pools",
		[gpufleet.dollars(cost), gpufleet.dollars(budget)],
	)
}

warn contains gpufleet.violation("placement.budget", input.environment, message) if {
	is_number(budget)
	cost <= budget + 1e-6
	cost > budget * data.gpufleet.budget_warn_share
	message := sprintf("plan costs %s/h, %s of the budget of %s/h", [gpufleet.dollars(cost), gpufleet.percent(cost / budget), gpufleet.dollars(budget)])
}
