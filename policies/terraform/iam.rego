# No IAM grant with wildcard actions or principals: GPU nodes get the actions they need,
# from the principals that need them. AWS policy documents (JSON strings on policies and
# roles, aws_iam_policy_document data sources), GCP IAM members, Azure role definitions.
package terraform.iam

import data.lib.gpufleet
import data.terraform.lib
import rego.v1

deny contains gpufleet.violation("terraform.iam", subject, message) if {
	some subject, statements in aws_statements
	some statement in statements
	statement.effect == "Allow"
	wildcards := [action | some action in statement.actions; contains(action, "*")]
	count(wildcards) > 0
	message := sprintf(
		"allows wildcard actions %s. To fix: list the actions the GPU nodes need (ecr:BatchGetImage, s3:GetObject, ...)",
		[concat(", ", wildcards)],
	)
}

deny contains gpufleet.violation("terraform.iam", subject, message) if {
	some subject, statements in aws_statements
	some statement in statements
	statement.effect == "Allow"
	"*" in statement.principals
	message := "allows any principal (\"*\"). To fix: name the accounts, roles or services allowed"
}

deny contains gpufleet.violation("terraform.iam", subject, message) if {
	some type, grants in lib.gcp_iam_grants
	some name, r in grants
	some member in array.concat([m | m := r.member], object.get(r, "members", []))
	member in {"allUsers", "allAuthenticatedUsers"}
	subject := sprintf("%s.%s", [type, name])
	message := sprintf("grants %s to %s. To fix: grant it to named service accounts or groups", [object.get(r, "role", "a role"), member])
}

deny contains gpufleet.violation("terraform.iam", sprintf("azurerm_role_definition.%s", [name]), message) if {
	some name, r in lib.resources("azurerm_role_definition")
	some permissions in gpufleet.block(r, "permissions")
	"*" in object.get(permissions, "actions", [])
	message := "role definition allows all actions (\"*\"). To fix: list the actions the GPU nodes need"
}

warn contains gpufleet.violation("terraform.iam", subject, message) if {
	some subject, text in aws_policy_texts
	not is_object(text)
	not json.is_valid(text)
	not policy_document_in_stack(text)
	message := "policy is not literal JSON (built from interpolations?), so it cannot be checked for wildcards. To fix: build it with an aws_iam_policy_document data source"
}

# Policy JSON by resource address: policies, inline policies, role trust policies.
aws_policy_texts[sprintf("%s.%s", [type, name])] := r.policy if {
	some type in ["aws_iam_policy", "aws_iam_role_policy", "aws_iam_user_policy", "aws_iam_group_policy"]
	some name, r in lib.resources(type)
}

aws_policy_texts[sprintf("aws_iam_role.%s", [name])] := r.assume_role_policy if {
	some name, r in lib.resources("aws_iam_role")
}

aws_policy_texts[sprintf("aws_iam_role.%s.inline_policy[%d]", [name, i])] := inline.policy if {
	some name, r in lib.resources("aws_iam_role")
	some i, inline in gpufleet.block(r, "inline_policy")
}

# Statements as {effect, actions, principals}, whichever way they were written.
aws_statements[subject] := [normalized(s) | some s in as_list(document.Statement)] if {
	some subject, text in aws_policy_texts
	document := parsed(text)
}

aws_statements[sprintf("data.aws_iam_policy_document.%s", [name])] := [statement |
	some s in gpufleet.block(d, "statement")
	statement := {
		"effect": object.get(s, "effect", "Allow"),
		"actions": object.get(s, "actions", []),
		"principals": [id | some p in gpufleet.block(s, "principals"); some id in p.identifiers],
	}
] if {
	some name, d in object.get(object.get(input, "data", {}), "aws_iam_policy_document", {})
}

# `${data.aws_iam_policy_document.NAME.json}`: checked as that data source.
policy_document_in_stack(text) if {
	some match in regex.find_all_string_submatch_n(`^\$\{data\.aws_iam_policy_document\.([^.}]+)\.json\}$`, text, 1)
	input.data.aws_iam_policy_document[match[1]]
}

normalized(s) := {
	"effect": object.get(s, "Effect", "Allow"),
	"actions": as_list(object.get(s, "Action", [])),
	"principals": principals(object.get(s, "Principal", {})),
}

principals(p) := [p] if is_string(p)

principals(p) := [id | some ids in p; some id in as_list(ids)] if is_object(p)

parsed(text) := text if is_object(text)

parsed(text) := json.unmarshal(text) if {
	is_string(text)
	json.is_valid(text)
}

as_list(value) := value if is_array(value)

as_list(value) := [value] if not is_array(value)
