"""User-facing errors.

:class:`HwmlpError` carries a one-line message that names the problem and the fix.
The CLI prints it without a traceback and exits with status 2; anything else that
escapes is a bug in hwmlp and keeps its traceback.
"""


class HwmlpError(Exception):
    """An error caused by the user's input or environment, with a one-line message."""


class ToolMissingError(HwmlpError):
    """An external program (Yosys, a simulator) is not installed."""
