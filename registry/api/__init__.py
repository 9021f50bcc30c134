"""HTTP API routes (JSON)."""
