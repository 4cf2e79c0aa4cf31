"""`python -m milp_map.fit_platform`: the command line of milp_map/cli/fit_platform.py."""

from milp_map.cli.launch import start

main = start("milp_map.cli.fit_platform", __name__)
