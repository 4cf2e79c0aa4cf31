"""`python -m milp_map`: the same as `milp-map` and `python -m milp_map.solve`."""

from milp_map.cli.solve import main

if __name__ == "__main__":
    raise SystemExit(main())
