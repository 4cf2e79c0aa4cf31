"""`python -m milp_map.solve`: the command line of milp_map/cli/solve.py."""

from milp_map.cli.launch import start

main = start("milp_map.cli.solve", __name__)
