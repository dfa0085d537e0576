"""Performances as data: logs, datasets and a procedural performer."""
