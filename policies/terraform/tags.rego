# GPU node pools carry the tags billing and ownership read (data.gpufleet.required_tags).
package terraform.tags

import data.lib.gpufleet
import data.terraform.lib
import rego.v1

deny contains gpufleet.violation("terraform.tags", address, message) if {
	some address, pool in lib.gpu_pools
	missing := [key | some key in data.gpufleet.required_tags; not gpufleet.has_value(pool.tags, key)]
	count(missing) > 0
	message := sprintf(
		"GPU node pool lacks %s %s. To fix: set them in the environment's or the pool's `tags` in the fleet spec (the stacks copy them to %s)",
		[kind[pool.provider], concat(", ", missing), field[pool.provider]],
	)
}

kind := {"aws": "tags", "gcp": "labels", "azure": "tags"}

field := {"aws": "`tags`", "gcp": "`node_config.resource_labels`", "azure": "`tags`"}
