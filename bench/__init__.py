"""Benchmarks of tiergate against a direct SDK call, on loopback: ``make bench``.

Every figure comes from real processes: the emulator of the Messages API, ``tiergate serve``
pointed at it, and load generators in this process speaking gRPC or the ``anthropic`` SDK.
"""
