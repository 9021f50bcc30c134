"""Energy meters: NVML (GPU), RAPL (CPU package and DRAM), and a labelled estimate."""
