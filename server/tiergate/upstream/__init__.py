"""The roads to Claude: the model client, provider clients, retry budget, breakers and upstream errors."""
