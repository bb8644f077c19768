"""The errors every adapter raises: :class:`BrokerError` and its kinds, with user-fit messages.

``permanent`` says whether retrying can help; ``code`` is the machine-readable kind.
"""

from __future__ import annotations

from typing import ClassVar


class BrokerError(Exception):
    """Base of every error an adapter raises. ``message`` is fit for users."""

    code: ClassVar[str] = "error"

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.message = message
        # A permanent error (bad password, wrong protocol) will not go away on
        # retry; a transient one (broker restarting) may.
        self.permanent = permanent


class BrokerUnavailable(BrokerError):
    code = "unavailable"


class BrokerAuthError(BrokerError):
    code = "auth_failed"

    def __init__(self, message: str, *, permanent: bool = True) -> None:
        super().__init__(message, permanent=permanent)


class BrokerTimeout(BrokerError):
    code = "timeout"


class NotSupported(BrokerError):
    code = "not_supported"

    def __init__(self, message: str, *, permanent: bool = True) -> None:
        super().__init__(message, permanent=permanent)


class ConfigError(BrokerError):
    """The cluster's configuration is wrong; nothing was sent to a broker."""

    code = "config_error"

    def __init__(self, message: str, *, permanent: bool = True) -> None:
        super().__init__(message, permanent=permanent)


class NotFound(BrokerError):
    code = "not_found"
