package flowgate.gates.ai_provider

# Gate: may this AI step send its prompt (data from the run) to this provider?
# Input: provider ("flowgate-models" or "connection:<name>"), outside (true for an LLM
# connection: the prompt leaves Flowgate), host (the provider's host), model, block, node,
# flow. Deny by default: only the rules below allow.

# Set to false to keep every prompt in house (the model service, and the hosts below only).
outside_allowed := true

# Provider hosts that count as in house even when they are reached through a connection
# (a vLLM or Ollama server you run). Edit to suit.
in_house_hosts := {"vllm.internal.example.com"}

decision := {"allow": true, "reasons": ["the model service runs in house"]} if {
	input.outside == false
} else := {"allow": true, "reasons": [sprintf("%s is in house", [input.host])]} if {
	input.host in in_house_hosts
} else := {"allow": true, "reasons": ["this workspace may use outside providers"]} if {
	input.outside == true
	outside_allowed
} else := {"allow": false, "reasons": [sprintf("this workspace keeps prompts in house: %s is an outside provider", [object.get(input, "host", "an unknown host")])]}
