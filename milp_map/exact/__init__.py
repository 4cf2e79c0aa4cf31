"""Exact algorithms beside the formulations: the chain DP, label-setting chain fronts, the
epsilon-constraint Pareto sweep over any formulation, and brute force for cross-checks."""
