"""Typed CFS API errors: plain exceptions chosen by the vendor's error code.

Error codes are the vendor's (cfs-docs.txt "公共错误码" and each action's "错误码" list). The
class of an error is chosen from its code, so callers can `except CfsNotFound` instead of
comparing strings; the original code, message and RequestId are always kept. Callers that must
map codes to something of their own (the driver to gRPC statuses) use `lookup` with a table of
(pattern, value) pairs, so all code matching follows one rule.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

T = TypeVar("T")

# Codes the SDK itself produces when no CFS reply was parsed (transport failures).
SDK_NETWORK_CODES = frozenset({"ClientNetworkError", "ServerNetworkError"})


class CfsError(Exception):
    """A failed CFS API call (after the retry policy gave up).

    `str(err)` is "<code>: <message> (RequestId <id>)". Messages are scrubbed of secrets by the
    client before an error is built, so an error is always safe to log or return to a caller.
    """

    def __init__(self, code: str, message: str = "", request_id: str | None = None):
        super().__init__(code, message, request_id)
        self.code = code
        self.message = message
        self.request_id = request_id

    def __str__(self) -> str:
        return f"{self.code}: {self.message} (RequestId {self.request_id or '-'})"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r}, {self.request_id!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Copy/pickle through the base constructor: subclasses fix the code in theirs.
        return _rebuild, (type(self), self.code, self.message, self.request_id), self.__dict__


def _rebuild(cls: type[CfsError], code: str, message: str, request_id: str | None) -> CfsError:
    err = cls.__new__(cls)
    CfsError.__init__(err, code, message, request_id)
    return err


class CfsNotFound(CfsError):
    """ResourceNotFound*: the file system, group, rule or snapshot does not exist."""


class CfsInvalidParameter(CfsError):
    """InvalidParameter*, MissingParameter, UnknownParameter: the request can never succeed."""


class CfsAuthError(CfsError):
    """AuthFailure*, UnauthorizedOperation*, or no usable credentials."""


class CfsThrottled(CfsError):
    """RequestLimitExceeded*: the server's per-action rate limit."""


class CfsInternalError(CfsError):
    """InternalError*: a server-side failure, usually transient."""


class CfsResourceExhausted(CfsError):
    """ResourceInsufficient*, LimitExceeded*: quota or capacity reached."""


class CfsInUse(CfsError):
    """FailedOperation.PgroupInUse, ResourceInUse*: the resource is still referenced."""


class CfsNetworkError(CfsError):
    """No CFS reply: connection failure, timeout or a non-200 HTTP status.

    `maybe_sent` is True when the request may have reached the server, so a non-idempotent
    action (a create) may have taken effect even though no reply arrived.
    """

    def __init__(self, code: str, message: str = "", request_id: str | None = None, maybe_sent: bool = True):
        super().__init__(code, message, request_id)
        self.maybe_sent = maybe_sent


class WaitTimeout(CfsError):
    """A waiter gave up before the resource reached its target state."""

    def __init__(self, message: str):
        super().__init__("WaitTimeout", message)


class CallTimeout(CfsError):
    """The caller's own timeout for a call ran out before an attempt could be made (the
    rate limiter's next free slot was later); no request was sent."""

    def __init__(self, message: str):
        super().__init__("CallTimeout", message)


class FileSystemCreateFailed(CfsError):
    """The file system reached LifeCycleState `create_failed`; it will never become available."""

    def __init__(self, message: str):
        super().__init__("FileSystemCreateFailed", message)


class SnapshotCreateFailed(CfsError):
    """The snapshot reached a failed status; it will never become available."""

    def __init__(self, message: str):
        super().__init__("SnapshotCreateFailed", message)


# Code -> class. Exact codes first, then prefixes ("X*" matches X and X.<anything>).
_CLASS_BY_CODE: tuple[tuple[str, type[CfsError]], ...] = (
    ("FailedOperation.PgroupInUse", CfsInUse),
    ("ResourceInUse*", CfsInUse),
    ("ResourceNotFound*", CfsNotFound),
    ("InvalidParameter*", CfsInvalidParameter),
    ("InvalidParameterValue*", CfsInvalidParameter),
    ("MissingParameter*", CfsInvalidParameter),
    ("UnknownParameter*", CfsInvalidParameter),
    ("AuthFailure*", CfsAuthError),
    ("UnauthorizedOperation*", CfsAuthError),
    ("InvalidCredential", CfsAuthError),
    ("RequestLimitExceeded*", CfsThrottled),
    ("InternalError*", CfsInternalError),
    ("ResourceInsufficient*", CfsResourceExhausted),
    ("LimitExceeded*", CfsResourceExhausted),
)


def matches(pattern: str, code: str) -> bool:
    """`X*` matches X and X.<anything>; any other pattern matches only itself."""
    if pattern.endswith("*"):
        family = pattern[:-1]
        return code == family or code.startswith(family + ".")
    return code == pattern


def lookup(table: Iterable[tuple[str, T]], code: str, default: T) -> T:
    """The value of the first (pattern, value) pair whose pattern matches `code`."""
    for pattern, value in table:
        if matches(pattern, code):
            return value
    return default


def error_for(code: str, message: str = "", request_id: str | None = None) -> CfsError:
    """The typed error for a CFS (or SDK transport) error code."""
    if code in SDK_NETWORK_CODES:
        return CfsNetworkError(code, message, request_id)
    error_class: type[CfsError] = lookup(_CLASS_BY_CODE, code, CfsError)
    return error_class(code, message, request_id)
