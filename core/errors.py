"""Errors a user can act on.

Anything raised as a `MothError` is shown by the command line as one line on stderr
(`mothtui: <message>`) with a non-zero exit, and by the UI in a notification or modal.
Everything else is a bug and keeps its traceback.
"""


class MothError(Exception):
    """A problem with the user's input or environment, with a message that says what to do."""

    exit_code = 2


class ConfigError(MothError):
    """A configuration key is unknown, of the wrong type or out of range.

    `key` is the config key it is about (None: no single key, e.g. an unreadable file), so the
    new-run form puts the message under that key's field without reading the message's text.
    """

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


class StoreError(MothError):
    """A dataset or run store is missing, unreadable, corrupt, or would be overwritten."""


class Cancelled(MothError):
    """The work was asked to stop (SIGTERM, Ctrl-C or the UI's cancel)."""

    exit_code = 130


class DoesNotFit(MothError):
    """A config needs more device memory than there is (`mothtui plan` and `train` refuse it)."""
