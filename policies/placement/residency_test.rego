package placement.residency_test

import data.placement.residency
import data.placement.test_fixtures as fixtures
import rego.v1

test_allows_eu_demand_served_in_the_eu_and_on_prem if {
	count(residency.deny) == 0 with input as fixtures.plan with data.gpufleet.models as fixtures.models
	count(residency.warn) == 0 with input as fixtures.plan with data.gpufleet.models as fixtures.models
}

test_denies_eu_demand_routed_outside_the_eu if {
	plan := json.patch(fixtures.plan, [{"op": "replace", "path": "/routes/2/share", "value": 0.25}])
	residency.deny == {{
		"msg": "[placement.residency] chat: users in frankfurt (eu area) are routed to pool aws-use1 in us-east-1 (north-america) for 25% of their requests. To fix: give the model capacity in the eu area (or on-prem) within its max_rtt_ms and re-plan",
		"rule": "placement.residency",
		"subject": "chat",
	}} with input as plan with data.gpufleet.models as fixtures.models
}

test_denies_on_prem_when_the_area_does_not_allow_it if {
	areas := {"eu": {"continents": ["europe"], "allow_onprem": false}}
	onprem_outside := json.patch(fixtures.plan, [{"op": "replace", "path": "/pools/0/continent", "value": null}])
	count(residency.deny) == 0 with input as onprem_outside with data.gpufleet.models as fixtures.models
	count(residency.deny) == 1 with input as onprem_outside with data.gpufleet.models as fixtures.models with data.gpufleet.residency_areas as areas
}

test_denies_replicas_outside_the_models_residency if {
	every rules in [
		{"providers": ["onprem", "gcp"], "regions": [], "continents": []},
		{"providers": [], "regions": ["fra-*", "europe-*"], "continents": []},
		{"providers": [], "regions": [], "continents": ["europe"]},
	] {
		models := json.patch(fixtures.models, [{"op": "replace", "path": "/chat/residency", "value": rules}])
		fixtures.subjects(residency.deny) == {"chat"} with input as fixtures.plan with data.gpufleet.models as models
	}
	models := json.patch(fixtures.models, [{"op": "replace", "path": "/chat/residency/providers", "value": ["onprem", "gcp"]}])
	violations := residency.deny with input as fixtures.plan with data.gpufleet.models as models
	some v in violations
	v.msg == "[placement.residency] chat: runs in pool aws-use1 although its residency allows only providers onprem, gcp. To fix: re-plan, or widen models[].residency.providers in the spec"
}

test_warns_on_demand_without_a_continent if {
	plan := json.patch(fixtures.plan, [{"op": "replace", "path": "/demand/1/continent", "value": null}])
	fixtures.subjects(residency.warn) == {"virginia"} with input as plan with data.gpufleet.models as fixtures.models
	local := json.patch(plan, [{"op": "replace", "path": "/demand/1/region", "value": "local"}])
	count(residency.warn) == 0 with input as local with data.gpufleet.models as fixtures.models
}
