package flowgate.expense_limits

# Expense approval: approve within the category's limit, reject what is never allowed,
# send the rest to a reviewer. Input: amount (number), category, optional currency.

limits := {"travel": 2000, "meals": 150, "office": 500, "software": 1000, "training": 1500}

blocked_categories := {"gambling", "personal", "alcohol"}

hard_limit := 10000

limit := object.get(limits, input.category, 100)

route := "reject" if {
	input.category in blocked_categories
} else := "reject" if {
	input.amount > hard_limit
} else := "reject" if {
	input.amount <= 0
} else := "approve" if {
	input.amount <= limit
} else := "review"

reasons contains sprintf("category %v is never reimbursed", [input.category]) if {
	input.category in blocked_categories
}

reasons contains sprintf("amount %v is over the hard limit of %v", [input.amount, hard_limit]) if {
	input.amount > hard_limit
}

reasons contains sprintf("amount %v must be positive", [input.amount]) if {
	input.amount <= 0
}

reasons contains sprintf("amount %v is over the %v limit of %v", [input.amount, input.category, limit]) if {
	input.amount > limit
	input.amount <= hard_limit
	not input.category in blocked_categories
}

decision := {"route": route, "reasons": sort(reasons)}
