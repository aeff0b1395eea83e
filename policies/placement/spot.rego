# No model leans on spot capacity past its cap (data.gpufleet.max_spot_share): a spot
# reclaim wave must leave most of its capacity running. Capacity is replicas x req/s per
# replica, as the plan states it.
package placement.spot

import data.lib.gpufleet
import data.placement.lib
import rego.v1

deny contains gpufleet.violation("placement.spot", model, message) if {
	some model, pools in lib.hosting
	total := sum([capacity(model, pool, n) | some pool, n in pools])
	total > 0
	on_spot := sum([capacity(model, pool, n) | some pool, n in pools; lib.pools[pool].capacity == "spot"])
	cap := gpufleet.setting(data.gpufleet.max_spot_share, model)
	is_number(cap)
	on_spot / total > cap + 1e-9
	message := sprintf(
		"has %s of its capacity on spot pools, over the cap of %s. To fix: add on-demand, reserved or owned capacity it may run on, or raise max_spot_share.%s in the spec's policies.data",
		[gpufleet.percent(on_spot / total), gpufleet.percent(cap), model],
	)
}

capacity(model, pool, replicas) := replicas * object.get(lib.rps_per_replica, [model, pool], 0)
