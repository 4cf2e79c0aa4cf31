"""`python -m milp_map.sensitivity`: the command line of milp_map/cli/sensitivity.py."""

from milp_map.cli.launch import start

main = start("milp_map.cli.sensitivity", __name__)
