"""Clout's exceptions: Elasticsearch's errors as its Python client raises them.

The class names follow the official client (elasticsearch-py 8.x), with
its 7.x names as aliases, so that code written against Elasticsearch
catches the same exceptions here:

=======  ==========================  ====================
status   class (8.x)                 7.x alias
=======  ==========================  ====================
400      BadRequestError             RequestError
401      AuthenticationException
403      AuthorizationException
404      NotFoundError
409      ConflictError
other    ApiError                    TransportError
=======  ==========================  ====================

Every one carries ``status`` (the HTTP status), ``error_type`` (such as
``"resource_not_found_exception"``), ``reason`` and ``body`` (the error
envelope as a dict), and the 7.x client's ``status_code``, ``error`` and
``info``. A failed load raises :class:`LoadError` (an ``ApiError``), which
also names the ``source`` and, where the loader knows it, the ``line``.
"""

from __future__ import annotations

import json
import re
from typing import Any, Dict, Optional

__all__ = [
    "ApiError",
    "AuthenticationException",
    "AuthorizationException",
    "BadRequestError",
    "ConflictError",
    "LoadError",
    "NotFoundError",
    "RequestError",
    "TransportError",
]


class ApiError(Exception):
    """An error Elasticsearch would answer with ``status`` and ``body``."""

    def __init__(self, status: int, body: Dict[str, Any]) -> None:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        self.status: int = int(status)
        self.body: Dict[str, Any] = body
        self.error_type: str = error.get("type", "exception")
        self.reason: str = error.get("reason", "")
        super().__init__(self.status, self.error_type, self.reason)

    def __reduce__(self):
        # Pickling (multiprocessing, concurrent.futures) and copying: the
        # constructor's own arguments, and attributes set later (source, line).
        return (type(self), (self.status, self.body), self.__dict__)

    # elasticsearch-py 8.x names.
    @property
    def message(self) -> str:
        return self.error_type

    @property
    def info(self) -> Dict[str, Any]:
        """The error envelope (7.x's name for ``body``)."""
        return self.body

    # elasticsearch-py 7.x names.
    @property
    def status_code(self) -> int:
        return self.status

    @property
    def error(self) -> str:
        return self.error_type

    @property
    def root_cause(self) -> list:
        return self.body.get("error", {}).get("root_cause", [])

    def __str__(self) -> str:
        return f"{type(self).__name__}({self.status}, {self.error_type!r}, {self.reason!r})"

    def __repr__(self) -> str:
        return str(self)


class BadRequestError(ApiError):
    """400: the request is malformed (a bad parameter, date or sort field)."""


class AuthenticationException(ApiError):
    """401."""


class AuthorizationException(ApiError):
    """403."""


class NotFoundError(ApiError):
    """404: an unknown job, say."""


class ConflictError(ApiError):
    """409."""


# 7.x names.
RequestError = BadRequestError
TransportError = ApiError

_BY_STATUS = {
    400: BadRequestError,
    401: AuthenticationException,
    403: AuthorizationException,
    404: NotFoundError,
    409: ConflictError,
}


class LoadError(ApiError):
    """A dump or snapshot that could not be loaded; the store is unchanged.

    ``source`` names the file (or ``<bytes>``), ``line`` the line the
    loader stopped at when it knows one (NDJSON formats), else ``None``.
    """

    def __init__(self, status: int, body: Dict[str, Any]) -> None:
        super().__init__(status, body)
        self.source: Optional[str] = None
        self.line: Optional[int] = None

    def __str__(self) -> str:
        return f"LoadError({self.status}, {self.error_type!r}, {self.reason!r})"


# "<source>:<line>: ..." as the loader words a document's error.
_LINE = re.compile(r"^(?P<source>.*?):(?P<line>[0-9]+): ")


def from_failure(status: int, envelope: str, load: bool,
                 source: Optional[str] = None) -> ApiError:
    """The exception for an engine error (called by the extension)."""
    try:
        body = json.loads(envelope)
    except ValueError:  # never expected: the engine writes the envelope
        body = {"error": {"type": "exception", "reason": envelope}, "status": status}
    if load:
        error = LoadError(status, body)
        match = _LINE.match(error.reason)
        if match:
            error.source = match.group("source")
            error.line = int(match.group("line"))
        return error
    return _BY_STATUS.get(int(status), ApiError)(status, body)
