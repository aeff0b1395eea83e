# The GPU node pools of one synthesized stack (cdk.tf.json, Terraform JSON), read the same
# way on AWS (EKS node groups and their launch templates), GCP (GKE node pools) and Azure
# (AKS node pools), so each rule is written once. A normalized pool:
#   address           "aws_eks_node_group.NAME", as in Terraform
#   provider          aws | gcp | azure
#   tags              cloud tags (AWS tags incl. the provider's default_tags, GCP
#                     resource_labels, Azure tags): what billing and ownership read
#   labels            Kubernetes node labels
#   spot              capacity is spot or preemptible
#   max_nodes         the node counts it declares (max and fixed counts)
#   instance_types    what its nodes run on
#   accelerated       a GPU image or attached accelerators
#   launch_templates  names of the AWS launch templates it uses
#   resource          the resource as written
package terraform.lib

import data.lib.gpufleet
import rego.v1

resources(type) := object.get(object.get(input, "resource", {}), type, {})

node_pools[address] := pool if {
	some name, r in resources("aws_eks_node_group")
	address := sprintf("aws_eks_node_group.%s", [name])
	templates := {lt | some ref in gpufleet.block(r, "launch_template"); some lt in launch_templates_named(ref)}
	template_types := {t | some lt in templates; t := resources("aws_launch_template")[lt].instance_type}
	pool := {
		"address": address,
		"provider": "aws",
		"tags": object.union(aws_default_tags(r), object.get(r, "tags", {})),
		"labels": object.get(r, "labels", {}),
		"spot": upper(object.get(r, "capacity_type", "")) == "SPOT",
		"max_nodes": [v | some s in gpufleet.block(r, "scaling_config"); v := s.max_size],
		"instance_types": {t | some t in object.get(r, "instance_types", [])} | template_types,
		"accelerated": regex.match(`GPU|NVIDIA`, upper(object.get(r, "ami_type", ""))),
		"launch_templates": templates,
		"resource": r,
	}
}

node_pools[address] := pool if {
	some name, r in resources("google_container_node_pool")
	address := sprintf("google_container_node_pool.%s", [name])
	config := object.union_n(gpufleet.block(r, "node_config"))
	pool := {
		"address": address,
		"provider": "gcp",
		"tags": object.get(config, "resource_labels", {}),
		"labels": object.get(config, "labels", {}),
		"spot": any_truthy([object.get(config, "spot", false), object.get(config, "preemptible", false)]),
		# With no autoscaling block (gpufleet's pools: rebalance sizes them), the pool holds
		# only the counts the stack states; rebalance keeps to the spec's max_nodes.
		"max_nodes": array.concat(
			[v | some a in gpufleet.block(r, "autoscaling"); some key in ["max_node_count", "total_max_node_count"]; v := a[key]],
			[v | some key in ["node_count", "initial_node_count"]; v := r[key]],
		),
		"instance_types": {t | t := config.machine_type},
		"accelerated": count(gpufleet.block(config, "guest_accelerator")) > 0,
		"launch_templates": set(),
		"resource": r,
	}
}

node_pools[address] := pool if {
	some name, r in resources("azurerm_kubernetes_cluster_node_pool")
	address := sprintf("azurerm_kubernetes_cluster_node_pool.%s", [name])
	pool := {
		"address": address,
		"provider": "azure",
		"tags": object.get(r, "tags", {}),
		"labels": object.get(r, "node_labels", {}),
		"spot": lower(object.get(r, "priority", "")) == "spot",
		"max_nodes": [v | some key in ["max_count", "node_count"]; v := r[key]],
		"instance_types": {t | t := r.vm_size},
		"accelerated": false,
		"launch_templates": set(),
		"resource": r,
	}
}

# GPU pools: accelerated, on a GPU instance type, or on a type the stack does not spell
# out (an interpolation, a launch template outside the stack): fail closed.
gpu_pools[address] := pool if {
	some address, pool in node_pools
	gpu(pool)
}

gpu(pool) if pool.accelerated

gpu(pool) if {
	some t in pool.instance_types
	gpu_instance_type(pool.provider, t)
}

gpu(pool) if count({t | some t in pool.instance_types; is_string(t); not contains(t, "${")}) == 0

gpu_instance_type(provider, instance_type) if {
	some pattern in data.gpufleet.gpu_instance_patterns[provider]
	glob.match(lower(pattern), null, lower(instance_type))
}

# Launch templates that start GPU nodes: used by a GPU node group, or of a GPU type.
gpu_launch_templates[name] := lt if {
	some name, lt in resources("aws_launch_template")
	some pool in gpu_pools
	name in pool.launch_templates
}

gpu_launch_templates[name] := lt if {
	some name, lt in resources("aws_launch_template")
	gpu_instance_type("aws", object.get(lt, "instance_type", ""))
}

# The node groups that use a launch template, for messages.
users_of(template) := concat(", ", sort([pool.address | some pool in gpu_pools; template in pool.launch_templates]))

# A node group's `launch_template` block names its template by reference
# (${aws_launch_template.NAME.id}) or by the template's `name`.
launch_templates_named(ref) := {name |
	some value in [object.get(ref, "id", ""), object.get(ref, "name", "")]
	is_string(value)
	some match in regex.find_all_string_submatch_n(`\$\{aws_launch_template\.([^.}]+)\.`, value, -1)
	name := match[1]
} | {name |
	some name, lt in resources("aws_launch_template")
	lt.name == ref.name
}

# AWS provider default_tags land on every resource of that provider (alias) too.
aws_default_tags(r) := object.union_n([tags |
	some config in aws_providers
	provider_reference(config) == object.get(r, "provider", "aws")
	some defaults in gpufleet.block(config, "default_tags")
	tags := defaults.tags
	is_object(tags)
])

aws_providers := gpufleet.blocks(object.get(object.get(input, "provider", {}), "aws", null))

provider_reference(config) := sprintf("aws.%s", [config.alias])

provider_reference(config) := "aws" if not config.alias

any_truthy(values) := count([v | some v in values; gpufleet.truthy(v)]) > 0

# Resources of every GCP IAM member or binding type (google_project_iam_member, ...).
gcp_iam_grants[type] := grants if {
	some type, grants in object.get(input, "resource", {})
	startswith(type, "google_")
	regex.match(`_iam_(member|binding)$`, type)
}
