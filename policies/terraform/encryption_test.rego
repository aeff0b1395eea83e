package terraform.encryption_test

import data.terraform.encryption
import data.terraform.test_fixtures as fixtures
import rego.v1

test_allows_encrypted_volumes if {
	every stack in fixtures.stacks {
		count(encryption.deny) == 0 with input as stack
		count(encryption.warn) == 0 with input as stack
	}
}

test_denies_unencrypted_ebs if {
	stack := json.patch(fixtures.aws, [{"op": "remove", "path": "/resource/aws_launch_template/h100/block_device_mappings/0/ebs/encrypted"}])
	violations := encryption.deny with input as stack
	some v in violations
	v.subject == "aws_launch_template.h100"
	contains(v.msg, "EBS volume /dev/xvda of GPU nodes (aws_eks_node_group.h100) is not encrypted")
}

test_denies_aks_without_host_encryption if {
	stack := json.patch(fixtures.azure, [{"op": "remove", "path": "/resource/azurerm_kubernetes_cluster_node_pool/a100/host_encryption_enabled"}])
	fixtures.subjects(encryption.deny) == {"azurerm_kubernetes_cluster_node_pool.a100"} with input as stack
}

test_warns_when_no_volume_is_declared if {
	stack := json.patch(fixtures.aws, [{"op": "remove", "path": "/resource/aws_launch_template/h100/block_device_mappings"}])
	count(encryption.deny) == 0 with input as stack
	fixtures.subjects(encryption.warn) == {"aws_eks_node_group.h100"} with input as stack
}
