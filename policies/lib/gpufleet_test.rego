package lib.gpufleet_test

import data.lib.gpufleet
import rego.v1

test_violation_leads_with_rule_and_subject if {
	v := gpufleet.violation("terraform.tags", "aws_eks_node_group.gpu", "lacks tags")
	v.msg == "[terraform.tags] aws_eks_node_group.gpu: lacks tags"
	v.rule == "terraform.tags"
	v.subject == "aws_eks_node_group.gpu"
}

test_block_reads_lists_objects_and_absence if {
	gpufleet.block({"b": [{"x": 1}]}, "b") == [{"x": 1}]
	gpufleet.block({"b": {"x": 1}}, "b") == [{"x": 1}]
	gpufleet.block({}, "b") == []
	gpufleet.block({"b": "${token}"}, "b") == []
}

test_truthy_accepts_booleans_and_strings if {
	gpufleet.truthy(true)
	gpufleet.truthy("true")
	not gpufleet.truthy(false)
	not gpufleet.truthy("false")
	not gpufleet.truthy(null)
}

test_setting_falls_back_to_default if {
	gpufleet.setting({"default": 16, "prod": 64}, "prod") == 64
	gpufleet.setting({"default": 16, "prod": 64}, "dev") == 16
	gpufleet.setting({}, "dev") == null
}

test_has_value_needs_a_non_blank_string if {
	gpufleet.has_value({"owner": "ml"}, "owner")
	not gpufleet.has_value({"owner": " "}, "owner")
	not gpufleet.has_value({"owner": 1}, "owner")
	not gpufleet.has_value({}, "owner")
}

test_numbers_print_the_same_whole_or_not if {
	gpufleet.percent(0.25) == "25%"
	gpufleet.percent(0.1333) == "13%"
	gpufleet.dollars(50) == "$50"
	gpufleet.dollars(49.987) == "$49.99"
}
