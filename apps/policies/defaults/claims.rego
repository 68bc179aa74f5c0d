package flowgate.claims

# Claims triage from the fraud model's risk score (0..1): approve low risk, reject high
# risk with reasons, queue the rest for a reviewer with a priority. Input: risk, amount.

approve_below := 0.3

reject_from := 0.8

route := "reject" if {
	input.risk >= reject_from
} else := "approve" if {
	input.risk < approve_below
	object.get(input, "amount", 0) <= 5000
} else := "review"

priority := "high" if input.risk >= 0.6

else := "normal"

reasons contains sprintf("fraud risk %v is at or above %v", [input.risk, reject_from]) if {
	input.risk >= reject_from
}

reasons contains sprintf("fraud risk %v is below %v", [input.risk, approve_below]) if {
	input.risk < approve_below
}

reasons contains sprintf("amount %v needs a person above 5000", [input.amount]) if {
	input.risk < approve_below
	input.amount > 5000
}

reasons contains sprintf("fraud risk %v is between %v and %v", [input.risk, approve_below, reject_from]) if {
	input.risk >= approve_below
	input.risk < reject_from
}

decision := {"route": route, "priority": priority, "reasons": sort(reasons)}
