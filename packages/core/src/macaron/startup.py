"""The one exception of start-up: whatever stops a service from starting is a :class:`StartupError`."""

from __future__ import annotations


class StartupError(Exception):
    """The service cannot start; the message says what to fix and where.

    Its subclasses say which part is wrong: :class:`macaron.spec.SpecError` (a spec, with
    file and JSON pointer) and :class:`macaron.config.ConfigError` (a configuration file or
    variable). A command that loads a service catches this one class.
    """
