package placement.budget_test

import data.placement.budget
import data.placement.test_fixtures as fixtures
import rego.v1

test_allows_plans_within_budget if {
	count(budget.deny) == 0 with input as fixtures.plan with data.gpufleet.budget_usd_per_hour as 100
	count(budget.warn) == 0 with input as fixtures.plan with data.gpufleet.budget_usd_per_hour as 100
	count(budget.deny) == 0 with input as fixtures.plan with data.gpufleet.budget_usd_per_hour as null
}

test_denies_plans_over_budget if {
	budget.deny == {{
		"msg": "[placement.budget] hybrid: plan costs $50/h, over the budget of $40/h. To fix: raise budget.usd_per_hour, lower min_replicas or demand, or add cheaper pools",
		"rule": "placement.budget",
		"subject": "hybrid",
	}} with input as fixtures.plan with data.gpufleet.budget_usd_per_hour as 40
}

test_adds_up_the_pools_rather_than_trusting_the_total if {
	plan := json.patch(fixtures.plan, [{"op": "replace", "path": "/cost_per_hour", "value": 1}])
	count(budget.deny) == 1 with input as plan with data.gpufleet.budget_usd_per_hour as 40
}

test_warns_near_the_budget if {
	count(budget.deny) == 0 with input as fixtures.plan with data.gpufleet.budget_usd_per_hour as 52
	fixtures.subjects(budget.warn) == {"hybrid"} with input as fixtures.plan with data.gpufleet.budget_usd_per_hour as 52
}
