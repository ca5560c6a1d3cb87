"""Evaluation commands and metrics."""
