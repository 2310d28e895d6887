"""``hashbench.deep`` is :mod:`hashbench.methods.deep`: the deep-method framework
(:class:`DeepHashMethod`, :class:`FitContext`), under the name plugins import.
One module object, not a copy: monkeypatching and ``isinstance`` see the same names whichever path
imported it.
"""

import sys

from .methods import deep
from .methods.deep import *  # noqa: F403 - the names, for type checkers; the line below is what counts

sys.modules[__name__] = deep
