"""Schemathesis hooks for scripts/fuzz-api.

`POST /api/v1/sensors/entries` takes `application/cbor`, which
schemathesis cannot write. Its body is documented as bytes, and the bytes
a run generates are sent as they are: they are almost never a signed entry,
so the run checks what the route must do with any bytes from outside —
refuse them as documented, never with a 5xx.
"""

import json

import schemathesis


@schemathesis.serializer("application/cbor")
def cbor_as_bytes(ctx, value):
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    data = getattr(value, "data", None)
    if isinstance(data, bytes):
        return data
    if isinstance(value, str):
        return value.encode("utf-8", errors="ignore")
    return json.dumps(value, default=str).encode("utf-8")
