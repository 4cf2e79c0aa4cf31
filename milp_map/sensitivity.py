"""`python -m milp_map.sensitivity`: the command line of milp_map/cli/sensitivity.py."""

from milp_map.cli.sensitivity import main

if __name__ == "__main__":
    raise SystemExit(main())
