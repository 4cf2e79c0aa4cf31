"""The data every stage passes on: the layer graph, the platform, scores, the mapping, split
and schedule problems, and the solutions and fronts methods return (frozen dataclasses; no file
reading, no solver)."""
