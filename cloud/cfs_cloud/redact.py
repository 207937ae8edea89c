"""Keeping secrets out of logs and error text.

The SDK logs every request at DEBUG ("SendRequest: ..." with all headers, including
`Authorization` and `X-TC-Token`). `SdkLogRedactor` rewrites those records on the SDK's own
logger before any handler sees them; `scrub` removes known secret values from any text we
turn into an exception message.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from tencentcloud.common.abstract_client import LOGGER_NAME as SDK_LOGGER_NAME

REDACTED = "***"

# Header lines and v1 query parameters that carry signatures, keys or tokens.
_SECRET_FIELDS = re.compile(
    r"(?P<name>Authorization|X-TC-Token|Token|Signature|SecretKey)(?P<sep>\s*[:=]\s*)"
    r"(?P<value>[^\n&]*)",
    re.IGNORECASE,
)


def redact_fields(text: str) -> str:
    return _SECRET_FIELDS.sub(lambda m: m.group("name") + m.group("sep") + REDACTED, text)


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every non-empty value of `secrets` replaced by ***."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return redact_fields(text)


class SdkLogRedactor(logging.Filter):
    """Rewrites SDK log records so no signature or token survives formatting."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact_fields(record.getMessage())
        record.args = None
        return True


def install_sdk_log_redactor() -> None:
    """Attach the redactor to the SDK logger once (idempotent; safe from any thread)."""
    sdk_logger = logging.getLogger(SDK_LOGGER_NAME)
    if not any(isinstance(f, SdkLogRedactor) for f in sdk_logger.filters):
        sdk_logger.addFilter(SdkLogRedactor())
