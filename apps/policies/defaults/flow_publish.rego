package flowgate.gates.flow_publish

# Gate: may this flow version be published by this person?
# A flow that calls an HTTP host outside the allow-list, or handles fields marked PII,
# needs an admin. Deny by default: a missing definition is a denial.
#
# Written to be cheap for the embedded engine (regorus), where each rule a decision reads
# and each user-function call costs far more than a builtin: the checks run inline in
# `risk_reasons`, and the host regex runs once per URL.

# Hosts the HTTP connector may call without an admin's sign-off. Edit to suit.
allowed_hosts := {"api.example.com", "hooks.slack.com", "ledger.internal.example.com"}

nodes := object.get(object.get(input, "definition", {}), "nodes", [])

# An HTTP connector node whose URL's host is not allow-listed. The regex keeps the host
# (lower-cased) of a URL that starts with http(s)://, optionally quoted, and yields "" for
# any other URL (a template, a variable): that is not a fixed address.
risk_reasons contains reason if {
	some node in nodes
	node.type == "connector.http"
	url := object.get(object.get(node, "config", {}), "url", "")
	host := lower(regex.replace(url, `(?s)^(?:["']?https?://([^/:?#"'{}\s]+))?.*`, "$1"))
	not host in allowed_hosts
	reason := host_reason(node.id, host)
}

host_reason(id, "") := sprintf("node %s calls a URL that is not a fixed address", [id])

host_reason(id, host) := sprintf("node %s calls %s, which is not on the allow-list", [id, host]) if host != ""

# Fields the workspace classified as PII (Settings → Data) that the flow mentions: the app
# finds them in the definition and sends them as `pii_fields`.
risk_reasons contains sprintf("the flow handles fields marked PII: %s", [concat(", ", sort(fields))]) if {
	fields := object.get(input, "pii_fields", [])
	count(fields) > 0
}

decision := {"allow": false, "reasons": ["the input has no flow definition"]} if {
	not input.definition
} else := {"allow": true, "reasons": ["no HTTP calls outside the allow-list and no PII fields"]} if {
	count(risk_reasons) == 0
} else := {"allow": true, "reasons": array.concat(["published by an admin"], sort(risk_reasons))} if {
	input.actor_role == "admin"
} else := {"allow": false, "reasons": array.concat(sort(risk_reasons), ["an admin must publish this flow"])}
