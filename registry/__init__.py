"""The carbon label registry: verifies, validates, stores and serves signed carbon labels."""
