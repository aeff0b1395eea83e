package terraform.iam_test

import data.terraform.iam
import data.terraform.test_fixtures as fixtures
import rego.v1

test_allows_named_actions_and_principals if {
	every stack in fixtures.stacks {
		count(iam.deny) == 0 with input as stack
		count(iam.warn) == 0 with input as stack
	}
}

test_denies_wildcard_actions_in_policy_json if {
	stack := json.patch(fixtures.aws, [{"op": "replace", "path": "/resource/aws_iam_policy/weights/policy", "value": `{"Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}`}])
	violations := iam.deny with input as stack
	some v in violations
	v.msg == "[terraform.iam] aws_iam_policy.weights: allows wildcard actions s3:*. To fix: list the actions the GPU nodes need (ecr:BatchGetImage, s3:GetObject, ...)"
}

test_allows_wildcards_in_deny_statements if {
	stack := json.patch(fixtures.aws, [{"op": "replace", "path": "/resource/aws_iam_policy/weights/policy", "value": `{"Statement":[{"Effect":"Deny","Action":"*","Principal":"*"}]}`}])
	count(iam.deny) == 0 with input as stack
}

test_denies_any_principal_in_a_trust_policy if {
	stack := json.patch(fixtures.aws, [{"op": "replace", "path": "/resource/aws_iam_role/nodes/assume_role_policy", "value": {"Statement": [{"Effect": "Allow", "Principal": {"AWS": ["*"]}, "Action": "sts:AssumeRole"}]}}])
	fixtures.subjects(iam.deny) == {"aws_iam_role.nodes"} with input as stack
}

test_denies_wildcards_in_inline_policies_and_policy_documents if {
	stack := json.patch(fixtures.aws, [
		{"op": "add", "path": "/resource/aws_iam_role/nodes/inline_policy", "value": [{"name": "all", "policy": `{"Statement":[{"Effect":"Allow","Action":["ec2:Describe*"]}]}`}]},
		{"op": "add", "path": "/data", "value": {"aws_iam_policy_document": {"trust": {"statement": [{"actions": ["sts:AssumeRole"], "principals": [{"type": "AWS", "identifiers": ["*"]}]}]}}}},
	])
	fixtures.subjects(iam.deny) == {"aws_iam_role.nodes.inline_policy[0]", "data.aws_iam_policy_document.trust"} with input as stack
}

test_denies_public_gcp_members if {
	stack := json.patch(fixtures.gcp, [{"op": "add", "path": "/resource/google_storage_bucket_iam_binding", "value": {"weights": {"role": "roles/storage.objectViewer", "members": ["allUsers"]}}}])
	violations := iam.deny with input as stack
	some v in violations
	v.msg == "[terraform.iam] google_storage_bucket_iam_binding.weights: grants roles/storage.objectViewer to allUsers. To fix: grant it to named service accounts or groups"
}

test_denies_azure_roles_with_every_action if {
	stack := json.patch(fixtures.azure, [{"op": "replace", "path": "/resource/azurerm_role_definition/nodes/permissions/0/actions", "value": ["*"]}])
	fixtures.subjects(iam.deny) == {"azurerm_role_definition.nodes"} with input as stack
}

test_warns_on_policies_it_cannot_read if {
	stack := json.patch(fixtures.aws, [{"op": "replace", "path": "/resource/aws_iam_policy/weights/policy", "value": "${data.aws_iam_policy_document.weights.json}"}])
	fixtures.subjects(iam.warn) == {"aws_iam_policy.weights"} with input as stack
	documented := json.patch(stack, [{"op": "add", "path": "/data", "value": {"aws_iam_policy_document": {"weights": {"statement": [{"actions": ["s3:GetObject"]}]}}}}])
	count(iam.warn) == 0 with input as documented
	count(iam.deny) == 0 with input as documented
}
