# Helpers every gpufleet rule shares: the shape of a violation, tolerant reading of
# cdktf's JSON, and per-name settings with a default.
package lib.gpufleet

import rego.v1

# One deny or warn entry. conftest prints `msg`; gpufleet also reads `rule` and `subject`.
# The message leads with the rule and the resource or model it is about.
violation(rule, subject, text) := {
	"msg": sprintf("[%s] %s: %s", [rule, subject, text]),
	"rule": rule,
	"subject": subject,
}

# A nested block as a list, whichever way the JSON writes it: a list of objects, one
# object, or nothing.
block(obj, key) := blocks(object.get(obj, key, null))

blocks(value) := value if is_array(value)

blocks(value) := [value] if is_object(value)

blocks(value) := [] if {
	not is_array(value)
	not is_object(value)
}

# cdktf writes booleans as JSON booleans, or as strings when they pass through tokens.
truthy(value) := value in {true, "true"}

# A per-name setting such as {"default": 16, "prod": 64}.
setting(table, name) := object.get(table, name, object.get(table, "default", null))

# A tag or label that is set to something.
has_value(tags, key) if {
	value := tags[key]
	is_string(value)
	trim_space(value) != ""
}

# Numbers for messages, rounded here: OPA's sprintf formats an integral number given to
# %f as an int, so rules print with %v.
percent(share) := sprintf("%v%%", [round(share * 100)])

dollars(amount) := sprintf("$%v", [round(amount * 100) / 100])
