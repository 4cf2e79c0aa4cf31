"""`python -m milp_map.export`: the command line of milp_map/cli/export.py."""

from milp_map.cli.export import main

if __name__ == "__main__":
    raise SystemExit(main())
