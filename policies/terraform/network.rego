# GPU nodes get no public IP: they serve behind the gateway and pull weights privately.
package terraform.network

import data.lib.gpufleet
import data.terraform.lib
import rego.v1

deny contains gpufleet.violation("terraform.network", sprintf("aws_launch_template.%s", [name]), message) if {
	some name, lt in lib.gpu_launch_templates
	some nic in gpufleet.block(lt, "network_interfaces")
	gpufleet.truthy(object.get(nic, "associate_public_ip_address", false))
	message := sprintf(
		"launch template of GPU nodes (%s) gives them public IPs. To fix: set network_interfaces.associate_public_ip_address = false and reach the nodes through private subnets",
		[lib.users_of(name)],
	)
}

deny contains gpufleet.violation("terraform.network", address, message) if {
	some address, pool in lib.gpu_pools
	pool.provider == "gcp"
	not gke_private(pool.resource)
	message := "GKE GPU node pool may get public IPs. To fix: set network_config.enable_private_nodes = true on the pool (or private nodes on its cluster in this stack)"
}

deny contains gpufleet.violation("terraform.network", address, message) if {
	some address, pool in lib.gpu_pools
	pool.provider == "azure"
	some key in ["node_public_ip_enabled", "enable_node_public_ip"]
	gpufleet.truthy(object.get(pool.resource, key, false))
	message := sprintf("AKS GPU node pool gives its nodes public IPs. To fix: set %s = false", [key])
}

gke_private(pool) if {
	some config in gpufleet.block(pool, "network_config")
	gpufleet.truthy(object.get(config, "enable_private_nodes", false))
}

# A pool that says nothing inherits from its cluster, when the cluster is in this stack.
gke_private(pool) if {
	not gke_explicitly_public(pool)
	some match in regex.find_all_string_submatch_n(`\$\{google_container_cluster\.([^.}]+)\.`, object.get(pool, "cluster", ""), -1)
	cluster := lib.resources("google_container_cluster")[match[1]]
	some config in gpufleet.block(cluster, "private_cluster_config")
	gpufleet.truthy(object.get(config, "enable_private_nodes", false))
}

gke_explicitly_public(pool) if {
	some config in gpufleet.block(pool, "network_config")
	object.get(config, "enable_private_nodes", null) in {false, "false"}
}
