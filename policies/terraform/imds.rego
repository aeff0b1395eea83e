# AWS GPU nodes require IMDSv2 (session tokens), so a request forged through a served
# model or a sidecar cannot read the node role's credentials.
package terraform.imds

import data.lib.gpufleet
import data.terraform.lib
import rego.v1

deny contains gpufleet.violation("terraform.imds", sprintf("aws_launch_template.%s", [name]), message) if {
	some name, lt in lib.gpu_launch_templates
	not imdsv2_required(lt)
	message := sprintf(
		"launch template of GPU nodes (%s) allows IMDSv1. To fix: set metadata_options.http_tokens = \"required\"",
		[lib.users_of(name)],
	)
}

deny contains gpufleet.violation("terraform.imds", address, message) if {
	some address, pool in lib.gpu_pools
	pool.provider == "aws"
	count(pool.launch_templates) == 0
	message := "GPU node group has no launch template, so IMDSv2 is not enforced. To fix: give it a launch template with metadata_options.http_tokens = \"required\""
}

imdsv2_required(lt) if {
	some options in gpufleet.block(lt, "metadata_options")
	options.http_tokens == "required"
}
