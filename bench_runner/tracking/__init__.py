"""Experiment tracking and monitoring: MLflow logging, training-run and production labels."""
