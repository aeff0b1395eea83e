package placement.licence_test

import data.placement.licence
import data.placement.test_fixtures as fixtures
import rego.v1

test_allows_models_on_their_licensed_providers if {
	count(licence.deny) == 0 with input as fixtures.plan
	licences := {"chat-licence": {"models": ["ch*"], "providers": ["onprem", "aws", "gcp"]}}
	count(licence.deny) == 0 with input as fixtures.plan with data.gpufleet.licences as licences
}

test_denies_models_on_other_providers if {
	licences := {"chat-licence": {"models": ["ch*"], "providers": ["onprem", "gcp"]}}
	licence.deny == {{
		"msg": "[placement.licence] chat: runs on aws (pool aws-use1) but licence chat-licence allows only onprem, gcp. To fix: restrict models[].residency.providers to those providers and re-plan",
		"rule": "placement.licence",
		"subject": "chat",
	}} with input as fixtures.plan with data.gpufleet.licences as licences
}
