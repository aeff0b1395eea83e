package placement.spot_test

import data.placement.spot
import data.placement.test_fixtures as fixtures
import rego.v1

test_allows_spot_under_the_cap if {
	count(spot.deny) == 0 with input as fixtures.plan
}

test_denies_spot_over_the_cap if {
	spot.deny == {{
		"msg": "[placement.spot] chat: has 13% of its capacity on spot pools, over the cap of 10%. To fix: add on-demand, reserved or owned capacity it may run on, or raise max_spot_share.chat in the spec's policies.data",
		"rule": "placement.spot",
		"subject": "chat",
	}} with input as fixtures.plan with data.gpufleet.max_spot_share as {"default": 0.1}
}

test_cap_is_per_model if {
	count(spot.deny) == 0 with input as fixtures.plan with data.gpufleet.max_spot_share as {"default": 0.1, "chat": 0.2}
}
