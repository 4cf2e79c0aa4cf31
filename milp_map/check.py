"""`python -m milp_map.check`: the command line of milp_map/cli/check.py."""

from milp_map.cli.launch import start

main = start("milp_map.cli.check", __name__)
