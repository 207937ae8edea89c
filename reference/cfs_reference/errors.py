"""The one error type the service raises: a CFS error code and a message naming the field.

Every layer (signature checks, parameter validation, the backend) raises ApiError; the server
turns it into the documented error envelope. Codes are the vendor's, as listed in the docs.
"""

from __future__ import annotations


class ApiError(Exception):
    """A documented CFS error: `code` (e.g. ResourceNotFound.FileSystemNotFound) and a message."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def not_found(code: str, kind: str, resource_id: str) -> ApiError:
    return ApiError(code, f"{kind} {resource_id!r} does not exist")


def invalid_value(code: str, field: str, value: object, allowed: str) -> ApiError:
    return ApiError(code, f"{field}={value!r} is invalid: {allowed}")


def require(condition: bool, code: str, message: str) -> None:
    """Raise ApiError(code, message) unless `condition` holds."""
    if not condition:
        raise ApiError(code, message)
