"""`python -m milp_map.solve`: the command line of milp_map/cli/solve.py."""

from milp_map.cli.solve import main

if __name__ == "__main__":
    raise SystemExit(main())
