"""`python -m milp_map.evaluate`: the command line of milp_map/cli/evaluate.py."""

from milp_map.cli.evaluate import main

if __name__ == "__main__":
    raise SystemExit(main())
