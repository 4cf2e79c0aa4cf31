"""`python -m milp_map.zoo`: the command line of milp_map/cli/zoo.py."""

from milp_map.cli.zoo import main

if __name__ == "__main__":
    raise SystemExit(main())
