package terraform.nodes_test

import data.terraform.nodes
import data.terraform.test_fixtures as fixtures
import rego.v1

aws_40 := json.patch(fixtures.aws, [{"op": "replace", "path": "/resource/aws_eks_node_group/h100/scaling_config/max_size", "value": 40}])

test_allows_pools_under_the_ceiling if {
	every stack in fixtures.stacks {
		count(nodes.deny) == 0 with input as stack with data.gpufleet.environment as "hybrid"
		count(nodes.warn) == 0 with input as stack with data.gpufleet.environment as "hybrid"
	}
}

test_denies_pools_over_the_ceiling if {
	violations := nodes.deny with input as aws_40 with data.gpufleet.environment as "hybrid"
	some v in violations
	v.msg == "[terraform.nodes] aws_eks_node_group.h100: GPU node pool may scale to 40 nodes, over the ceiling of 16 for environment 'hybrid'. To fix: lower the pool's max_nodes, or raise node_ceilings.hybrid in the spec's policies.data"
	gke := json.patch(fixtures.gcp, [{"op": "add", "path": "/resource/google_container_node_pool/h100/node_count", "value": 20}])
	count(nodes.deny) == 1 with input as gke with data.gpufleet.environment as "hybrid"
}

test_ceiling_is_per_environment if {
	count(nodes.deny) == 0 with input as aws_40 with data.gpufleet.environment as "prod"
	count(nodes.deny) == 1 with input as aws_40 with data.gpufleet.environment as "prod" with data.gpufleet.node_ceilings as {"default": 100, "prod": 8}
}

test_warns_when_the_count_is_not_literal if {
	stack := json.patch(fixtures.azure, [{"op": "replace", "path": "/resource/azurerm_kubernetes_cluster_node_pool/a100/max_count", "value": "${var.max_nodes}"}])
	count(nodes.deny) == 0 with input as stack
	fixtures.subjects(nodes.warn) == {"azurerm_kubernetes_cluster_node_pool.a100"} with input as stack
}

test_a_gke_pool_without_autoscaler_is_checked_by_its_stated_counts if {
	manual := json.patch(fixtures.gcp, [
		{"op": "remove", "path": "/resource/google_container_node_pool/h100/autoscaling"},
		{"op": "add", "path": "/resource/google_container_node_pool/h100/initial_node_count", "value": 0},
	])
	count(nodes.warn) == 0 with input as manual with data.gpufleet.environment as "hybrid"
	count(nodes.deny) == 0 with input as manual with data.gpufleet.environment as "hybrid"
	big := json.patch(manual, [{"op": "replace", "path": "/resource/google_container_node_pool/h100/initial_node_count", "value": 20}])
	count(nodes.deny) == 1 with input as big with data.gpufleet.environment as "hybrid"
}
