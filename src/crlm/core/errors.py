"""The errors a user can act on: a bad param, a damaged or mismatched file.

A stage that raises one logs its message as one line and exits with status 1, no traceback (set CRLM_DEBUG=1
to see it); any other exception is a bug and keeps its traceback.
"""


class UserError(Exception):
    """A problem with the input (params, files), whose message names the value or file and the fix."""


class UnknownArchError(UserError, KeyError):
    """A model arch name that no registry entry or module crlm/models/<name>.py defines."""

    def __str__(self) -> str:
        return str(self.args[0])
