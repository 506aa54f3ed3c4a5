"""Temporal attention as an unsupervised cloud mask: clear scores and their detection metrics."""
