package terraform.providers_test

import data.terraform.providers
import data.terraform.test_fixtures as fixtures
import rego.v1

test_allows_exact_and_patch_level_pins if {
	every stack in fixtures.stacks {
		count(providers.deny) == 0 with input as stack
	}
}

test_denies_ranges_and_missing_versions if {
	ranged := json.patch(fixtures.aws, [{"op": "replace", "path": "/terraform/required_providers/aws/version", "value": ">= 5.0"}])
	violations := providers.deny with input as ranged
	some v in violations
	v.msg == "[terraform.providers] provider aws: version constraint '>= 5.0' is not pinned. To fix: require an exact version (\"5.84.0\") or patch releases only (\"~> 5.84.0\")"
	minor := json.patch(fixtures.gcp, [{"op": "replace", "path": "/terraform/required_providers/google/version", "value": "~> 6.12"}])
	count(providers.deny) == 1 with input as minor
	missing := json.patch(fixtures.azure, [{"op": "remove", "path": "/terraform/required_providers/azurerm/version"}])
	count(providers.deny) == 1 with input as missing
}

test_denies_configured_providers_that_are_not_required if {
	stack := json.patch(fixtures.aws, [{"op": "add", "path": "/provider/helm", "value": [{"kubernetes": {}}]}])
	fixtures.subjects(providers.deny) == {"provider helm"} with input as stack
}
