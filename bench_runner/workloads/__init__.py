"""Workloads of suite v1: deterministic data, built-in reference models, and user plugins.

PyTorch is imported only when a workload is built, never at import time.
"""

from bench_runner.workloads.base import Workload, WorkloadError, hash_artifact

__all__ = ["Workload", "WorkloadError", "hash_artifact"]
