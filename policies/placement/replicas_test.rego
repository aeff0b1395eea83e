package placement.replicas_test

import data.placement.replicas
import data.placement.test_fixtures as fixtures
import rego.v1

test_allows_enough_replicas_spread_enough if {
	count(replicas.deny) == 0 with input as fixtures.plan with data.gpufleet.models as fixtures.models
}

test_denies_too_few_replicas if {
	models := json.patch(fixtures.models, [{"op": "replace", "path": "/chat/min_replicas", "value": 10}])
	violations := replicas.deny with input as fixtures.plan with data.gpufleet.models as models
	some v in violations
	v.msg == "[placement.replicas] chat: has 9 replicas, fewer than its min_replicas of 10. To fix: add capacity it may run on (max_nodes, pools), or lower min_replicas"
	plan := json.patch(fixtures.plan, [{"op": "replace", "path": "/models/0/min_replicas", "value": 12}])
	count(replicas.deny) == 1 with input as plan with data.gpufleet.models as fixtures.models
}

test_denies_models_the_plan_leaves_out if {
	models := object.union(fixtures.models, {"code": {"min_replicas": 1, "spread": null, "residency": {}}})
	fixtures.subjects(replicas.deny) == {"code"} with input as fixtures.plan with data.gpufleet.models as models
}

test_denies_too_little_spread if {
	every spread in [{"across": "provider", "min": 4}, {"across": "region", "min": 4}, {"across": "zone", "min": 4}, {"across": "pool", "min": 4}] {
		models := json.patch(fixtures.models, [{"op": "replace", "path": "/chat/spread", "value": spread}])
		count(replicas.deny) == 1 with input as fixtures.plan with data.gpufleet.models as models
	}
	models := json.patch(fixtures.models, [{"op": "replace", "path": "/chat/spread", "value": {"across": "zone", "min": 4}}])
	violations := replicas.deny with input as fixtures.plan with data.gpufleet.models as models
	some v in violations
	v.msg == "[placement.replicas] chat: runs in 3 zone(s) (aws:us-east-1, gcp:europe-west4-a, onprem:fra-dc1), fewer than its spread of 4. To fix: allow it pools in more zones, or lower spread.min"
}
