package flowgate.gates.flow_publish

# Gate: may this flow version be published by this person?
# A flow that calls an HTTP host outside the allow-list, or handles fields marked PII,
# needs an admin. Deny by default: a missing definition is a denial.

# Hosts the HTTP connector may call without an admin's sign-off. Edit to suit.
allowed_hosts := {"api.example.com", "hooks.slack.com", "ledger.internal.example.com"}

nodes := object.get(object.get(input, "definition", {}), "nodes", [])

http_urls contains [node.id, url] if {
	some node in nodes
	node.type == "connector.http"
	url := object.get(object.get(node, "config", {}), "url", "")
}

host(url) := lower(matches[0][1]) if {
	matches := regex.find_all_string_submatch_n(`^["']?https?://([^/:?#"'{}\s]+)`, url, 1)
	count(matches) == 1
}

risk_reasons contains sprintf("node %s calls %s, which is not on the allow-list", [id, host(url)]) if {
	some [id, url] in http_urls
	not host(url) in allowed_hosts
}

risk_reasons contains sprintf("node %s calls a URL that is not a fixed address", [id]) if {
	some [id, url] in http_urls
	not host(url)
}

# Every value marked "pii" anywhere in the nodes: one walk, shared by the two rules below.
pii_marks contains value if {
	walk(nodes, [path, value])
	count(path) > 0
	path[count(path) - 1] == "pii"
}

pii_fields contains field if {
	some value in pii_marks
	is_array(value)
	some field in value
}

pii_fields contains "(unnamed)" if true in pii_marks

risk_reasons contains sprintf("the flow handles fields marked PII: %s", [concat(", ", sort(pii_fields))]) if {
	count(pii_fields) > 0
}

is_admin if input.actor_role == "admin"

decision := {"allow": false, "reasons": ["the input has no flow definition"]} if {
	not input.definition
} else := {"allow": true, "reasons": ["no HTTP calls outside the allow-list and no PII fields"]} if {
	count(risk_reasons) == 0
} else := {"allow": true, "reasons": array.concat(["published by an admin"], sort(risk_reasons))} if {
	is_admin
} else := {"allow": false, "reasons": array.concat(sort(risk_reasons), ["an admin must publish this flow"])}
