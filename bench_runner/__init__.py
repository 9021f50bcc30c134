"""The benchmark runner's side: keys, signing and submitting labels (measurement comes in issue 3)."""
