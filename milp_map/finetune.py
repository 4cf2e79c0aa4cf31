"""`python -m milp_map.finetune`: the command line of milp_map/cli/finetune.py."""

from milp_map.cli.finetune import main

if __name__ == "__main__":
    raise SystemExit(main())
