package flowgate.gates.agent_tools

# Gate: may an ai.agent step make this tool call? Decided before each call.
# Input: tool (the name the model called), kind ("block" or "flow"), target (the block
# type or the flow's slug), side_effect (true when the block, or any step of the flow,
# changes something outside Flowgate), arguments (what the model asked for), agent (the
# node), run, flow, model, provider, turn, calls (calls made so far in this step).
# Answer: {"allow", "action": "allow" | "deny" | "review", "reasons"}. "review" parks the
# agent until a person approves the call in the inbox. Deny by default.

# Tools no agent in this workspace may call, by tool name or target. Edit to suit.
denied_tools := set()

# Tools a person approves before every call, besides those with side effects.
review_tools := set()

# Set to false to let agents make calls with side effects without a reviewer.
review_side_effects := true

named(names) if input.tool in names

named(names) if input.target in names

decision := {"allow": false, "action": "deny", "reasons": ["the call names no tool"]} if {
	not is_string(input.tool)
} else := {"allow": false, "action": "deny", "reasons": [sprintf("agents may not call %s in this workspace", [input.tool])]} if {
	named(denied_tools)
} else := {"allow": false, "action": "review", "reasons": [sprintf("a person approves every call of %s", [input.tool])]} if {
	named(review_tools)
} else := {"allow": false, "action": "review", "reasons": [sprintf("%s has side effects: a person approves the call", [input.tool])]} if {
	input.side_effect == true
	review_side_effects
} else := {"allow": true, "action": "allow", "reasons": [sprintf("%s may be called by agents", [input.tool])]}
