# No GPU pool scales past its environment's ceiling (data.gpufleet.node_ceilings): a
# typo in max_nodes must not buy a hundred GPU nodes.
package terraform.nodes

import data.lib.gpufleet
import data.terraform.lib
import rego.v1

ceiling := gpufleet.setting(data.gpufleet.node_ceilings, data.gpufleet.environment)

deny contains gpufleet.violation("terraform.nodes", address, message) if {
	is_number(ceiling)
	some address, pool in lib.gpu_pools
	some nodes in pool.max_nodes
	is_number(nodes)
	nodes > ceiling
	message := sprintf(
		"GPU node pool may scale to %v nodes, over the ceiling of %v for environment '%s'. To fix: lower the pool's max_nodes, or raise node_ceilings.%s in the spec's policies.data",
		[nodes, ceiling, data.gpufleet.environment, data.gpufleet.environment],
	)
}

warn contains gpufleet.violation("terraform.nodes", address, message) if {
	some address, pool in lib.gpu_pools
	count([n | some n in pool.max_nodes; is_number(n)]) == 0
	message := "GPU node pool states no literal node count, so the ceiling cannot be checked. To fix: write its max node count as a number"
}
