"""`python -m milp_map.compare`: the command line of milp_map/cli/compare.py.

Importing this module (`import milp_map.compare`) makes `milp_map.compare` this module, not
the API function of that name; the module is therefore callable and calls it.
"""

import sys
import types

from milp_map.cli.launch import start


class _CallableModule(types.ModuleType):
    def __call__(self, *args: object, **kwargs: object) -> object:
        from milp_map.api import compare

        return compare(*args, **kwargs)  # type: ignore[arg-type]


sys.modules[__name__].__class__ = _CallableModule

main = start("milp_map.cli.compare", __name__)
