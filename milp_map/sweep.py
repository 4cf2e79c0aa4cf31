"""`python -m milp_map.sweep`: the command line of milp_map/cli/sweep.py."""

from milp_map.cli.launch import start

main = start("milp_map.cli.sweep", __name__)
