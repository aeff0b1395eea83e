package terraform.tags_test

import data.terraform.tags
import data.terraform.test_fixtures as fixtures
import rego.v1

test_allows_tagged_gpu_pools if {
	every stack in fixtures.stacks {
		count(tags.deny) == 0 with input as stack
	}
}

test_denies_aws_pool_without_owner if {
	stack := json.patch(fixtures.aws, [{"op": "remove", "path": "/provider/aws/0/default_tags/0/tags/owner"}])
	tags.deny == {{
		"msg": "[terraform.tags] aws_eks_node_group.h100: GPU node pool lacks tags owner. To fix: set them in the environment's or the pool's `tags` in the fleet spec (the stacks copy them to `tags`)",
		"rule": "terraform.tags",
		"subject": "aws_eks_node_group.h100",
	}} with input as stack
}

test_denies_gke_pool_without_resource_labels if {
	stack := json.patch(fixtures.gcp, [{"op": "remove", "path": "/resource/google_container_node_pool/h100/node_config/resource_labels"}])
	violations := tags.deny with input as stack
	some v in violations
	contains(v.msg, "lacks labels env, pool, cost-center, owner")
	contains(v.msg, "node_config.resource_labels")
}

test_denies_aks_pool_with_blank_cost_center if {
	stack := json.patch(fixtures.azure, [{"op": "replace", "path": "/resource/azurerm_kubernetes_cluster_node_pool/a100/tags/cost-center", "value": ""}])
	fixtures.subjects(tags.deny) == {"azurerm_kubernetes_cluster_node_pool.a100"} with input as stack
}

test_ignores_cpu_pools if {
	stack := json.patch(fixtures.azure, [
		{"op": "replace", "path": "/resource/azurerm_kubernetes_cluster_node_pool/a100/vm_size", "value": "Standard_D4s_v5"},
		{"op": "remove", "path": "/resource/azurerm_kubernetes_cluster_node_pool/a100/tags"},
	])
	count(tags.deny) == 0 with input as stack
}
