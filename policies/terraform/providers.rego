# Every provider a stack uses has its version pinned, so a synth today and a deploy next
# month run the same provider code.
package terraform.providers

import data.lib.gpufleet
import rego.v1

required := object.get(object.get(input, "terraform", {}), "required_providers", {})

deny contains gpufleet.violation("terraform.providers", sprintf("provider %s", [name]), message) if {
	some name, requirement in required
	version := object.get(requirement, "version", "")
	not pinned(version)
	message := sprintf(
		"version constraint '%s' is not pinned. To fix: require an exact version (\"5.84.0\") or patch releases only (\"~> 5.84.0\")",
		[version],
	)
}

deny contains gpufleet.violation("terraform.providers", sprintf("provider %s", [name]), message) if {
	some name, _ in object.get(input, "provider", {})
	not required[name]
	message := "is configured but not in terraform.required_providers, so any version may be installed. To fix: add it there with a pinned version"
}

pinned(version) if {
	is_string(version)
	some pattern in data.gpufleet.pinned_version_patterns
	regex.match(pattern, version)
}
