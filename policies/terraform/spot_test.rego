package terraform.spot_test

import data.terraform.spot
import data.terraform.test_fixtures as fixtures
import rego.v1

aws_spot := json.patch(fixtures.aws, [{"op": "replace", "path": "/resource/aws_eks_node_group/h100/capacity_type", "value": "SPOT"}])

gcp_spot := json.patch(fixtures.gcp, [{"op": "replace", "path": "/resource/google_container_node_pool/h100/node_config/spot", "value": true}])

azure_spot := json.patch(fixtures.azure, [{"op": "replace", "path": "/resource/azurerm_kubernetes_cluster_node_pool/a100/priority", "value": "Spot"}])

test_allows_spot_outside_production if {
	every stack in [aws_spot, gcp_spot, azure_spot] {
		count(spot.deny) == 0 with input as stack with data.gpufleet.environment as "hybrid"
	}
}

test_denies_spot_in_production if {
	every stack in [aws_spot, gcp_spot, azure_spot] {
		count(spot.deny) == 1 with input as stack with data.gpufleet.environment as "prod"
	}
	violations := spot.deny with input as aws_spot with data.gpufleet.environment as "prod"
	some v in violations
	contains(v.msg, "spot GPU capacity in production environment 'prod'")
}

test_allows_spot_in_production_with_an_exception if {
	stack := json.patch(azure_spot, [{"op": "add", "path": "/resource/azurerm_kubernetes_cluster_node_pool/a100/tags/spot-exception", "value": "CHG-1234"}])
	count(spot.deny) == 0 with input as stack with data.gpufleet.environment as "prod"
	labelled := json.patch(gcp_spot, [{"op": "add", "path": "/resource/google_container_node_pool/h100/node_config/labels/spot-exception", "value": "chg-1234"}])
	count(spot.deny) == 0 with input as labelled with data.gpufleet.environment as "prod"
}
