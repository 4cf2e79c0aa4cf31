"""The command lines: argparse and printing only, over the library (`python -m milp_map.X`
runs milp_map/cli/X.py)."""
