# No spot GPU capacity in production (data.gpufleet.production_environments) unless the
# pool carries an explicit, named exception (data.gpufleet.spot_exception_key).
package terraform.spot

import data.lib.gpufleet
import data.terraform.lib
import rego.v1

deny contains gpufleet.violation("terraform.spot", address, message) if {
	data.gpufleet.environment in data.gpufleet.production_environments
	some address, pool in lib.gpu_pools
	pool.spot
	key := data.gpufleet.spot_exception_key
	not gpufleet.has_value(pool.tags, key)
	not gpufleet.has_value(pool.labels, key)
	message := sprintf(
		"spot GPU capacity in production environment '%s'. To fix: use on_demand or reserved capacity, or record an approved exception as the pool's tag %s: <ticket>",
		[data.gpufleet.environment, key],
	)
}
