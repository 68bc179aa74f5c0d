package flowgate.gates.model_promotion

# Gate: may this model version be promoted (moved to an alias such as "production")?
# Deny by default: every check below must pass. `decision` is what the gate reads.
# Each check is one rule with its reasons inline: in the embedded engine every rule a
# decision reads costs more than the builtins inside it.

# One reason per threshold that fails, in threshold name order: the metric is missing,
# or it is below the minimum.
metric_reasons := [reason |
	metrics := object.get(input, "metrics", {})
	thresholds := object.get(input, "thresholds", {})
	names := {name | some name, _ in metrics}
	failures := object.union(
		{name: sprintf("metric %s is missing", [name]) | some name, _ in thresholds; not name in names},
		{name: sprintf("metric %s = %v is below %v", [name, metrics[name], minimum]) |
			some name, minimum in thresholds
			name in names
			to_number(metrics[name]) < to_number(minimum)
		},
	)
	some reason in failures
]

signature_reasons := [] if {
	input.has_signature
	input.has_signature != ""
} else := ["the model version has no signature"]

checksum_reasons := [] if {
	input.artifact_sha256 != ""
	input.artifact_sha256 == input.expected_sha256
} else := ["the artifact checksum does not match the registered one"]

# Four eyes: one admin requests a promotion, a different one approves it. The one exception
# is an emergency rollback: one admin may point an alias back at the version it had before
# its last promotion (the service sends change "rollback" only for that version); it still
# has to pass every other check.
approver := object.get(input, "approved_by", "")

emergency_rollback if {
	input.change == "rollback"
	input.previous_version != ""
	input.version == input.previous_version
}

approver_reasons := [] if emergency_rollback

else := ["the promotion has no approver"] if {
	approver == ""
}

else := ["the requester cannot approve their own promotion"] if {
	approver == object.get(input, "requested_by", "")
}

else := []

reasons := array.concat(
	array.concat(metric_reasons, signature_reasons),
	array.concat(checksum_reasons, approver_reasons),
)

decision := {"allow": true, "reasons": ["all checks passed"]} if {
	count(reasons) == 0
} else := {"allow": false, "reasons": reasons}
