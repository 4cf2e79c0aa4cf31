"""`python -m milp_map.sweep`: the command line of milp_map/cli/sweep.py."""

from milp_map.cli.sweep import main

if __name__ == "__main__":
    raise SystemExit(main())
