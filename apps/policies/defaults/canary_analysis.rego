package flowgate.gates.canary_analysis

# Canary analysis: while a canary serves part of production's traffic, compare it with
# production on live signals and decide "rollback", "promote_request" or "hold", with
# reasons. Flowgate rolls back on "rollback" at once (the emergency rule of the promotion
# gate); "promote_request" only tells the admins: promotion stays a four-eyes request.

canary := object.get(input, "canary", {})

production := object.get(input, "production", {})

limits := object.get(input, "limits", {})

limit(name, default_value) := object.get(limits, name, default_value)

enough_traffic if object.get(canary, "samples", 0) >= limit("min_samples", 30)

enough_labels if object.get(canary, "labelled", 0) >= limit("min_labels", 20)

# Each failing live signal, in a fixed order.
failures := [reason |
	some check in [accuracy_failure, error_failure, latency_failure, agreement_failure, confidence_failure]
	some reason in check
]

accuracy_failure := [sprintf("canary accuracy %v is more than %v below production's %v", [canary.accuracy, limit("max_accuracy_drop", 0.05), production.accuracy])] if {
	enough_labels
	canary.accuracy != null
	production.accuracy != null
	production.accuracy - canary.accuracy > limit("max_accuracy_drop", 0.05)
} else := []

error_failure := [sprintf("canary error rate %v is above %v", [canary.error_rate, limit("max_error_rate", 0.05)])] if {
	enough_traffic
	object.get(canary, "error_rate", 0) > limit("max_error_rate", 0.05)
} else := []

latency_failure := [sprintf("canary latency %v ms is over %v times production's %v ms", [canary.latency_ms, limit("max_latency_ratio", 2), production.latency_ms])] if {
	enough_traffic
	canary.latency_ms != null
	production.latency_ms != null
	production.latency_ms > 0
	canary.latency_ms > production.latency_ms * limit("max_latency_ratio", 2)
} else := []

agreement_failure := [sprintf("canary agrees with production on %v of shadowed calls, below %v", [input.agreement, limit("min_agreement", 0.8)])] if {
	object.get(input, "agreement", null) != null
	object.get(input, "shadowed", 0) >= limit("min_samples", 30)
	input.agreement < limit("min_agreement", 0.8)
} else := []

confidence_failure := [sprintf("canary confidence %v is more than %v below production's %v", [canary.confidence, limit("max_confidence_drop", 0.1), production.confidence])] if {
	enough_traffic
	canary.confidence != null
	production.confidence != null
	production.confidence - canary.confidence > limit("max_confidence_drop", 0.1)
} else := []

decision := {"action": "rollback", "reasons": failures} if {
	count(failures) > 0
} else := {"action": "promote_request", "reasons": ["the canary matches or beats production on every live signal"]} if {
	enough_traffic
	enough_labels
} else := {"action": "hold", "reasons": [sprintf("waiting for traffic and labels: %v samples, %v labelled", [object.get(canary, "samples", 0), object.get(canary, "labelled", 0)])]}
