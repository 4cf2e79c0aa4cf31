"""Exact models, one module each; each has its Markdown twin in the repository's formulations/."""
