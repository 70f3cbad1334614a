"""The roads to Claude.

- ``model_client``: the only code that talks to the Messages API (deadline, retries, usage).
- ``answers``: an answer is judged before anything is billed from it.
- ``retry_budget``: retries allowed only while recent calls mostly succeed.
- ``errors``: the upstream's failures mapped to the service's errors.
"""
