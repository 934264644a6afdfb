"""User-facing errors: the CLI prints their message (no traceback) and exits with code 2."""

import errno

# OSErrors of the place, not of the program (full disk, quota, read-only, no permission): the
# user frees space or picks another folder, so they exit with code 2 too.
OUTPUT_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}
)


class LoanriskError(Exception):
    """A problem the user can fix: bad config, bad data, a missing model. Exit code 2."""

    exit_code = 2


class ConfigError(LoanriskError):
    """The configuration or a command-line option is invalid."""


class DataError(LoanriskError):
    """An input table or file is missing, unreadable or violates the data contract."""


class ModelError(LoanriskError):
    """A model URI does not resolve or the model does not fit the input."""


class Terminated(BaseException):  # noqa: N818 (a signal, like KeyboardInterrupt)
    """SIGTERM arrived. A BaseException, so no `except Exception` on the way swallows it: every
    `with` block unwinds (MLflow runs end as FAILED, temporary files are removed)."""


class OutputError(LoanriskError):
    """An output folder cannot be written: the disk is full, or the folder is read-only or not
    ours to write. Nothing was half written."""
