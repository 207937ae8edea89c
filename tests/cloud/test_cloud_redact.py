"""Secret redaction of SDK log records and error text."""

import logging

from cfs_cloud.redact import (
    SDK_LOGGER_NAME,
    SdkLogRedactor,
    install_sdk_log_redactor,
    redact_fields,
    scrub,
)

SDK_DUMP = (
    "Host: 127.0.0.1:8080\nMethod: POST\nUri: /\nHeader: X-TC-Action: DescribeCfsFileSystems\n"
    "Authorization: TC3-HMAC-SHA256 Credential=AKIDx/2026-11-27/cfs/tc3_request, "
    "SignedHeaders=content-type;host, Signature=8f2d0c\nX-TC-Token: tok-123\n"
    'Data: {"Limit": 1}\n'
)


def test_signed_headers_and_tokens_are_redacted():
    text = redact_fields(SDK_DUMP)
    assert "Authorization: ***" in text and "X-TC-Token: ***" in text
    assert "8f2d0c" not in text and "tok-123" not in text and "Credential=" not in text
    assert "X-TC-Action: DescribeCfsFileSystems" in text and '"Limit": 1' in text


def test_v1_query_parameters_are_redacted():
    text = redact_fields("Action=X&SecretId=AKID&Signature=abc%3D&Token=t1&Nonce=5")
    assert text == "Action=X&SecretId=AKID&Signature=***&Token=***&Nonce=5"


def test_scrub_removes_known_values_anywhere():
    assert scrub("key k3y-value leaked, token tkn", ("k3y-value", "tkn", None)) == "key *** leaked, token ***"


def test_filter_rewrites_formatted_records():
    record = logging.LogRecord(
        SDK_LOGGER_NAME, logging.DEBUG, __file__, 1, "SendRequest: %s", (SDK_DUMP,), None
    )
    assert SdkLogRedactor().filter(record) is True
    assert "Signature=8f2d0c" not in record.getMessage()
    assert "Authorization: ***" in record.getMessage()


def test_install_is_idempotent():
    install_sdk_log_redactor()
    install_sdk_log_redactor()
    filters = logging.getLogger(SDK_LOGGER_NAME).filters
    assert sum(isinstance(f, SdkLogRedactor) for f in filters) == 1
