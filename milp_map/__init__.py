"""milp_map: provably optimal mappings of DNN layers onto heterogeneous accelerators."""

__version__ = "0.1.0"
