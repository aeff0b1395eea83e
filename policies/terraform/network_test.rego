package terraform.network_test

import data.terraform.network
import data.terraform.test_fixtures as fixtures
import rego.v1

test_allows_private_gpu_nodes if {
	every stack in fixtures.stacks {
		count(network.deny) == 0 with input as stack
	}
}

test_denies_public_ips_from_a_launch_template if {
	stack := json.patch(fixtures.aws, [{"op": "replace", "path": "/resource/aws_launch_template/h100/network_interfaces/0/associate_public_ip_address", "value": "true"}])
	violations := network.deny with input as stack
	some v in violations
	v.subject == "aws_launch_template.h100"
	contains(v.msg, "(aws_eks_node_group.h100) gives them public IPs")
}

test_denies_gke_pool_without_private_nodes if {
	stack := json.patch(fixtures.gcp, [{"op": "remove", "path": "/resource/google_container_node_pool/h100/network_config"}])
	fixtures.subjects(network.deny) == {"google_container_node_pool.h100"} with input as stack
}

test_allows_gke_pool_of_a_private_cluster_in_the_stack if {
	stack := json.patch(fixtures.gcp, [
		{"op": "remove", "path": "/resource/google_container_node_pool/h100/network_config"},
		{"op": "replace", "path": "/resource/google_container_node_pool/h100/cluster", "value": "${google_container_cluster.usc1.id}"},
		{"op": "add", "path": "/resource/google_container_cluster", "value": {"usc1": {"private_cluster_config": [{"enable_private_nodes": true}]}}},
	])
	count(network.deny) == 0 with input as stack
}

test_denies_gke_pool_that_opts_out_of_its_private_cluster if {
	stack := json.patch(fixtures.gcp, [
		{"op": "replace", "path": "/resource/google_container_node_pool/h100/network_config/enable_private_nodes", "value": false},
		{"op": "replace", "path": "/resource/google_container_node_pool/h100/cluster", "value": "${google_container_cluster.usc1.id}"},
		{"op": "add", "path": "/resource/google_container_cluster", "value": {"usc1": {"private_cluster_config": {"enable_private_nodes": true}}}},
	])
	count(network.deny) == 1 with input as stack
}

test_denies_aks_node_public_ips if {
	stack := json.patch(fixtures.azure, [{"op": "replace", "path": "/resource/azurerm_kubernetes_cluster_node_pool/a100/node_public_ip_enabled", "value": true}])
	violations := network.deny with input as stack
	some v in violations
	contains(v.msg, "set node_public_ip_enabled = false")
}
