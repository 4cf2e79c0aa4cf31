"""`python -m milp_map`: the same as `milp-map` and `python -m milp_map.solve`."""

from milp_map.cli.launch import start

main = start("milp_map.cli.solve", __name__)
