"""`python -m milp_map.evaluate`: the command line of milp_map/cli/evaluate.py."""

from milp_map.cli.launch import start

main = start("milp_map.cli.evaluate", __name__)
