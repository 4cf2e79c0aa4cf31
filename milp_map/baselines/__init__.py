"""Reference and heuristic mappings scored on the same cost model as the exact methods."""
