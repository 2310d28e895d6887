"""``hashbench.nets`` is :mod:`hashbench.methods.nets`: the networks that deep methods
share, under the name plugins import.
One module object, not a copy: monkeypatching and ``isinstance`` see the same names whichever path
imported it.
"""

import sys

from .methods import nets
from .methods.nets import *  # noqa: F403 - the names, for type checkers; the line below is what counts

sys.modules[__name__] = nets
