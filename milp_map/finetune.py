"""`python -m milp_map.finetune`: the command line of milp_map/cli/finetune.py."""

from milp_map.cli.launch import start

main = start("milp_map.cli.finetune", __name__)
