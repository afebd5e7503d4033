"""One exception type for every user-facing failure.

The command line prints ``EmofuseError`` messages as a single line (no traceback), so each
message must name the file or value at fault and say how to fix it.
"""


class EmofuseError(Exception):
    """A failure caused by the user's input or environment, with a one-line explanation."""
