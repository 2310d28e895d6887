"""``hashbench.testing`` is :mod:`hashbench.methods.testing`: the conformance suite
(:func:`check_method`, :func:`parametrize_with_checks`), under the name plugins import.
One module object, not a copy: monkeypatching and ``isinstance`` see the same names whichever path
imported it.
"""

import sys

from .methods import testing
from .methods.testing import *  # noqa: F403 - the names, for type checkers; the line below is what counts

sys.modules[__name__] = testing
