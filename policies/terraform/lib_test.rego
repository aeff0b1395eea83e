package terraform.lib_test

import data.terraform.lib
import data.terraform.test_fixtures as fixtures
import rego.v1

test_reads_one_gpu_pool_per_cloud if {
	every stack in fixtures.stacks {
		count(lib.gpu_pools) == 1 with input as stack
	}
}

test_aws_tags_include_the_providers_default_tags if {
	pool := lib.gpu_pools["aws_eks_node_group.h100"] with input as fixtures.aws
	pool.tags == {"env": "hybrid", "owner": "ml-platform", "cost-center": "cc-4711", "pool": "aws-use1-h100"}
	pool.launch_templates == {"h100"}
}

test_cpu_pools_are_not_gpu_pools if {
	stack := json.patch(fixtures.aws, [
		{"op": "replace", "path": "/resource/aws_eks_node_group/h100/instance_types", "value": ["m6i.large"]},
		{"op": "replace", "path": "/resource/aws_eks_node_group/h100/ami_type", "value": "AL2023_x86_64_STANDARD"},
	])
	count(lib.node_pools) == 1 with input as stack
	count(lib.gpu_pools) == 0 with input as stack
}

test_pools_of_unknown_type_count_as_gpu_pools if {
	stack := json.patch(fixtures.azure, [{"op": "replace", "path": "/resource/azurerm_kubernetes_cluster_node_pool/a100/vm_size", "value": "${var.vm_size}"}])
	count(lib.gpu_pools) == 1 with input as stack
}

test_gpu_launch_templates_found_by_use_and_by_type if {
	by_name := json.patch(fixtures.aws, [{"op": "replace", "path": "/resource/aws_eks_node_group/h100/launch_template", "value": [{"name": "hybrid-aws-use1-h100", "version": "$Latest"}]}])
	lib.gpu_launch_templates.h100 with input as by_name
	unused := json.patch(fixtures.aws, [
		{"op": "remove", "path": "/resource/aws_eks_node_group/h100"},
		{"op": "add", "path": "/resource/aws_launch_template/h100/instance_type", "value": "g6.12xlarge"},
	])
	lib.gpu_launch_templates.h100 with input as unused
}

test_gke_spot_and_preemptible_are_spot if {
	spot := json.patch(fixtures.gcp, [{"op": "replace", "path": "/resource/google_container_node_pool/h100/node_config/spot", "value": true}])
	lib.gpu_pools["google_container_node_pool.h100"].spot with input as spot
	preemptible := json.patch(fixtures.gcp, [{"op": "add", "path": "/resource/google_container_node_pool/h100/node_config/preemptible", "value": "true"}])
	lib.gpu_pools["google_container_node_pool.h100"].spot with input as preemptible
	not lib.gpu_pools["google_container_node_pool.h100"].spot with input as fixtures.gcp
}

test_default_tags_come_from_the_node_groups_own_provider if {
	stack := json.patch(fixtures.aws, [
		{"op": "add", "path": "/provider/aws/-", "value": {"region": "eu-central-1", "alias": "eu-central-1"}},
		{"op": "replace", "path": "/resource/aws_eks_node_group/h100/provider", "value": "aws.eu-central-1"},
	])
	lib.gpu_pools["aws_eks_node_group.h100"].tags == {"pool": "aws-use1-h100"} with input as stack
	unaliased := json.patch(fixtures.aws, [
		{"op": "remove", "path": "/provider/aws/0/alias"},
		{"op": "remove", "path": "/resource/aws_eks_node_group/h100/provider"},
	])
	lib.gpu_pools["aws_eks_node_group.h100"].tags.owner == "ml-platform" with input as unaliased
}
