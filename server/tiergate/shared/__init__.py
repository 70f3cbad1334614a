"""State shared by the replicas (Redis, or memory for one replica): budgets, the response cache,
rate limits and request coalescing, all behind :mod:`.gate`; :mod:`.spend` serves
``tiergate.v1.SpendService``.
"""
