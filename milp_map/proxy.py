"""`python -m milp_map.proxy`: the command line of milp_map/cli/proxy.py."""

from milp_map.cli.proxy import main

if __name__ == "__main__":
    raise SystemExit(main())
