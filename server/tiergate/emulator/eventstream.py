"""Bedrock InvokeModel's streamed answer: the Messages API events in AWS event-stream framing.

``POST /model/{model}/invoke-with-response-stream`` answers ``200
application/vnd.amazon.eventstream``. Each Messages API event (``message_start`` ...
``message_stop``) travels as one ``chunk`` event whose JSON payload is ``{"bytes": "<base64 of
the event's JSON>"}``; an error after the 200 is an ``exception`` message whose
``:exception-type`` names one of the ``ResponseStream`` exceptions and whose payload is
``{"message": ...}``. The SDK decodes the frames with botocore's ``EventStreamBuffer``.

A frame (AWS "Event stream encoding"): a prelude of the total and the headers' length (two
big-endian uint32), the prelude's CRC32, the headers (name length as one byte, name, value type
7 = string, value length as uint16, value), the payload, and the CRC32 of everything before it.
botocore decodes event streams but encodes none; awscrt encodes only inside its own RPC
connections, and smithy-aws-event-stream (the new AWS SDK's) needs Python 3.12. So the few lines
below write the frames, and the tests decode them with botocore.

    >>> frame({":message-type": "event"}, b"{}")[:8].hex()
    '0000002800000016'

Sources (read 2026-12-06): AWS's "InvokeModelWithResponseStream" and "ResponseStream" API
reference, the Transcribe guide's "Event stream encoding" page; see docs/api-fidelity.md.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from collections.abc import Mapping
from typing import Any

from .streaming import Framing, StreamFault

CONTENT_TYPE = "application/vnd.amazon.eventstream"
_STRING = 7  # header value type: a UTF-8 string with a uint16 length

EXCEPTIONS: Mapping[str, int] = {
    "internalServerException": 500,
    "modelStreamErrorException": 424,
    "modelTimeoutException": 408,
    "serviceUnavailableException": 503,
    "throttlingException": 429,
    "validationException": 400,
}
"""The exceptions a ``ResponseStream`` carries, with the HTTP status AWS documents for each."""

# A Messages API error mid-stream as Bedrock relays it. The model's own failure (an overload)
# is the documented "error occurred while streaming the response", with its original status.
_RELAYED: Mapping[str, tuple[str, int | None]] = {
    "overloaded_error": ("modelStreamErrorException", 529),
    "api_error": ("internalServerException", None),
    "rate_limit_error": ("throttlingException", None),
    "invalid_request_error": ("validationException", None),
}


def _header(name: str, value: str) -> bytes:
    encoded_name, encoded_value = name.encode(), value.encode()
    return (
        struct.pack(">B", len(encoded_name))
        + encoded_name
        + struct.pack(">BH", _STRING, len(encoded_value))
        + encoded_value
    )


def frame(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One event-stream message of string ``headers`` and ``payload``."""
    encoded = b"".join(_header(name, value) for name, value in headers.items())
    prelude = struct.pack(">II", 12 + len(encoded) + len(payload) + 4, len(encoded))
    message = prelude + struct.pack(">I", binascii.crc32(prelude)) + encoded + payload
    return message + struct.pack(">I", binascii.crc32(message))


def chunk(event: Mapping[str, Any]) -> bytes:
    """A Messages API event as the ``chunk`` event that carries it."""
    inner = base64.b64encode(json.dumps(event).encode()).decode()
    headers = {
        ":event-type": "chunk",
        ":content-type": "application/json",
        ":message-type": "event",
    }
    return frame(headers, json.dumps({"bytes": inner}).encode())


def exception(kind: str, message: str, **fields: Any) -> bytes:
    """An ``exception`` message of the ``ResponseStream`` exception ``kind``."""
    if kind not in EXCEPTIONS:
        raise ValueError(f"unknown ResponseStream exception {kind!r}")
    headers = {
        ":exception-type": kind,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return frame(headers, json.dumps({"message": message, **fields}).encode())


def fault_exception(fault: StreamFault) -> bytes:
    """A ``stream_error`` fault as Bedrock sends it: a ResponseStream exception named by the
    fault, or the one that relays the fault's Messages API error type."""
    if fault.error_type in EXCEPTIONS:
        return exception(fault.error_type, "The stream failed.")
    kind, original = _RELAYED.get(fault.error_type, ("internalServerException", None))
    if original is None:
        return exception(kind, "The stream failed.")
    return exception(
        kind,
        "An error occurred while streaming the response. Retry your request.",
        originalStatusCode=original,
        originalMessage="Overloaded",
    )


EVENT_STREAM = Framing(CONTENT_TYPE, lambda name, data: chunk(data), fault_exception)
"""How Bedrock InvokeModel writes a streamed answer."""
