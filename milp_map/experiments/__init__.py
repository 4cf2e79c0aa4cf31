"""Many solves at once: the registry of mapping methods, the comparator, and sweeps."""
