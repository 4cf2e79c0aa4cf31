"""`python -m milp_map.check`: the command line of milp_map/cli/check.py."""

from milp_map.cli.check import main

if __name__ == "__main__":
    raise SystemExit(main())
