package flowgate.gates.mcp_tool_call

# Gate: may this caller call this MCP tool (a published flow exposed to outside agents)?
# Input: tool (its name), flow (slug), caller (the API token owner's username),
# caller_role (admin or builder: read-only tokens and reviewers never get this far),
# token (the token's name), arguments (the call's input). Deny by default: only the rules
# below allow.

# Tools that only some roles may call: tool name -> roles, e.g.
# {"refund-payment": {"admin"}}. Edit to suit.
restricted_tools := {}

# Callers (usernames) whose tokens may call no tool at all. Edit to suit.
blocked_callers := set()

decision := {"allow": false, "reasons": [sprintf("%s may not call tools", [input.caller])]} if {
	input.caller in blocked_callers
} else := {"allow": false, "reasons": [sprintf("only %s may call %s", [concat(", ", sort(restricted_tools[input.tool])), input.tool])]} if {
	not input.caller_role in restricted_tools[input.tool]
} else := {"allow": true, "reasons": [sprintf("a %s may call %s", [input.caller_role, input.tool])]} if {
	is_string(input.tool)
	input.tool != ""
	is_string(input.caller_role)
} else := {"allow": false, "reasons": ["the call names no tool or no caller"]}
