"""The call path: from a validated request to a billed, typed response.

:mod:`.prompt` lays out what the model reads, :mod:`.validation` checks requests,
:mod:`.sizing` and :mod:`.estimate` bound a call's tokens before it is sent, and
:mod:`.reuse` decides where prompt-cache breakpoints pay off.
"""
