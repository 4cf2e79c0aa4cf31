"""`python -m milp_map.export`: the command line of milp_map/cli/export.py."""

from milp_map.cli.launch import start

main = start("milp_map.cli.export", __name__)
