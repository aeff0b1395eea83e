package terraform.imds_test

import data.terraform.imds
import data.terraform.test_fixtures as fixtures
import rego.v1

test_allows_imdsv2 if {
	count(imds.deny) == 0 with input as fixtures.aws
}

test_denies_optional_tokens if {
	stack := json.patch(fixtures.aws, [{"op": "replace", "path": "/resource/aws_launch_template/h100/metadata_options/http_tokens", "value": "optional"}])
	violations := imds.deny with input as stack
	some v in violations
	v.msg == "[terraform.imds] aws_launch_template.h100: launch template of GPU nodes (aws_eks_node_group.h100) allows IMDSv1. To fix: set metadata_options.http_tokens = \"required\""
}

test_denies_node_group_without_launch_template if {
	stack := json.patch(fixtures.aws, [
		{"op": "remove", "path": "/resource/aws_eks_node_group/h100/launch_template"},
		{"op": "remove", "path": "/resource/aws_launch_template"},
	])
	fixtures.subjects(imds.deny) == {"aws_eks_node_group.h100"} with input as stack
}

test_denies_launch_template_without_metadata_options if {
	stack := json.patch(fixtures.aws, [{"op": "remove", "path": "/resource/aws_launch_template/h100/metadata_options"}])
	fixtures.subjects(imds.deny) == {"aws_launch_template.h100"} with input as stack
}
