"""hwmlp: bespoke, approximate, tiny MLP classifiers for printed (EGFET) hardware.

The integer model :class:`hwmlp.intmlp.IntMLP` is the single source of truth: the
search, the RTL generator, the testbenches and the reports all read it.
"""

from .errors import HwmlpError
from .intmlp import Activation, IntLayer, IntMLP

__all__ = ["HwmlpError", "Activation", "IntLayer", "IntMLP"]
__version__ = "0.1.0"
