package flowgate.support_triage

# Support triage: answer automatically, route to a team, or ask a person.
# Input: category, urgency (low | normal | high), confidence (0..1) from the classifier.

auto_reply_categories := {"password_reset", "opening_hours", "card_delivery"}

teams := {
	"fraud": "fraud-desk",
	"payments": "payments-team",
	"loans": "lending-team",
	"card_delivery": "cards-team",
	"password_reset": "digital-support",
	"opening_hours": "digital-support",
}

route := "review" if {
	input.urgency == "high"
	input.category == "fraud"
} else := "auto_reply" if {
	input.confidence >= 0.9
	input.category in auto_reply_categories
	input.urgency != "high"
} else := "route_team" if {
	input.confidence >= 0.6
	teams[input.category]
} else := "review"

team := teams[input.category] if route == "route_team"

reasons contains "high-urgency fraud reports are always read by a person" if {
	input.urgency == "high"
	input.category == "fraud"
}

reasons contains sprintf("classifier confidence %v is below 0.6", [input.confidence]) if {
	input.confidence < 0.6
}

reasons contains sprintf("no team handles category %v", [input.category]) if {
	not teams[input.category]
}

decision := {"route": route, "team": object.get(teams, input.category, ""), "reasons": sort(reasons)}
