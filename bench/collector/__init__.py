"""Collector benchmark: the HTTP collector against a bare aiokafka producer on one machine.

Run it with ``python -m bench.collector`` from the repository root; ``--help`` lists the knobs.
"""
