"""The benchmark runner's side: keys, signing and submitting labels.

Measurement (meters, workloads, protocol) is issue 3's work.
"""
