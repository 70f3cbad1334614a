"""The roads to Claude.

- ``roads``: one SDK client per road (the Claude API, Bedrock, Vertex AI, Foundry), built from
  the variables each SDK reads, with its model ids, scope and price.
- ``failover``: a call tries the roads in order; ``breakers`` skip a road that is down.
- ``model_client``: the only code that talks to the Messages API (deadline, retries, usage).
- ``answers``: an answer is judged before anything is billed from it.
- ``retry_budget``: retries allowed only while recent calls mostly succeed.
- ``errors``: the upstream's failures mapped to the service's errors.
"""
