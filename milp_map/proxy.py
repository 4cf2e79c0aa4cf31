"""`python -m milp_map.proxy`: the command line of milp_map/cli/proxy.py."""

from milp_map.cli.launch import start

main = start("milp_map.cli.proxy", __name__)
