# Models whose licence names the providers they may run on (data.gpufleet.licences:
# name -> {models: [glob], providers: [...]}) run only there.
package placement.licence

import data.lib.gpufleet
import data.placement.lib
import rego.v1

deny contains gpufleet.violation("placement.licence", model, message) if {
	some model, pools in lib.hosting
	some licence_name, licence in data.gpufleet.licences
	some pattern in licence.models
	glob.match(pattern, null, model)
	some pool_name, _ in pools
	provider := lib.pools[pool_name].provider
	not provider in licence.providers
	message := sprintf(
		"runs on %s (pool %s) but licence %s allows only %s. To fix: restrict models[].residency.providers to those providers and re-plan",
		[provider, pool_name, licence_name, concat(", ", licence.providers)],
	)
}
