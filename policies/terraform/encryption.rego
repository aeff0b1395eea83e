# GPU node volumes are encrypted at rest (model weights and KV-cache spill live there).
# GCP encrypts every persistent disk; AWS needs encrypted EBS, Azure host encryption
# (temp disks and caches).
package terraform.encryption

import data.lib.gpufleet
import data.terraform.lib
import rego.v1

deny contains gpufleet.violation("terraform.encryption", sprintf("aws_launch_template.%s", [name]), message) if {
	some name, lt in lib.gpu_launch_templates
	some mapping in gpufleet.block(lt, "block_device_mappings")
	some ebs in gpufleet.block(mapping, "ebs")
	not gpufleet.truthy(object.get(ebs, "encrypted", false))
	message := sprintf(
		"EBS volume %s of GPU nodes (%s) is not encrypted. To fix: set block_device_mappings.ebs.encrypted = true",
		[object.get(mapping, "device_name", "?"), lib.users_of(name)],
	)
}

deny contains gpufleet.violation("terraform.encryption", address, message) if {
	some address, pool in lib.gpu_pools
	pool.provider == "azure"
	not host_encrypted(pool.resource)
	message := "AKS GPU node pool does not encrypt at host (temp disks and caches stay in clear). To fix: set host_encryption_enabled = true"
}

warn contains gpufleet.violation("terraform.encryption", address, message) if {
	some address, pool in lib.gpu_pools
	pool.provider == "aws"
	count({name | some name in pool.launch_templates; declares_ebs(lib.resources("aws_launch_template")[name])}) == 0
	message := "GPU node group declares no EBS volume, so its root volume is encrypted only if the account turns on EBS encryption by default. To fix: give it a launch template with an encrypted block_device_mappings entry"
}

host_encrypted(pool) if {
	some key in ["host_encryption_enabled", "enable_host_encryption"]
	gpufleet.truthy(object.get(pool, key, false))
}

declares_ebs(lt) if {
	some mapping in gpufleet.block(lt, "block_device_mappings")
	count(gpufleet.block(mapping, "ebs")) > 0
}
