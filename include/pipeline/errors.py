"""Errors that retrying cannot help.

A task that raises one of these fails at once (``airflow_glue.not_retryable``) with its one
line, instead of being retried for minutes: wrong credentials, a source that does not
answer in its contract's shape, a failed quality gate, a period with no payroll, a missing
extract. Every message names the connection or the source and what was expected, and
never carries a secret or a full ID number.
"""

from __future__ import annotations


class NotRetryable(Exception):
    """Mixin: the task fails at once; trying again gives the same answer."""
