"""`python -m milp_map.zoo`: the command line of milp_map/cli/zoo.py."""

from milp_map.cli.launch import start

main = start("milp_map.cli.zoo", __name__)
