"""Webhook signatures: HMAC-SHA256 of the raw request body with the webhook's secret.

Receivers check `X-Pickwise-Signature: sha256=<hex>` against the body exactly as received
(before parsing it), with a constant-time comparison; `verify` does that.
"""

import hashlib
import hmac
import secrets

SIGNATURE_HEADER = "X-Pickwise-Signature"
EVENT_HEADER = "X-Pickwise-Event"
DELIVERY_HEADER = "X-Pickwise-Delivery"
SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header_value: str | None) -> bool:
    return header_value is not None and hmac.compare_digest(signature(secret, body), header_value)
