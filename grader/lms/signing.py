"""HMAC-SHA256 signatures of webhooks and callbacks, and the integration secrets behind them.

The signed string is `timestamp + "." + body`, so a captured request cannot be replayed later with
a fresh timestamp; the receiver rejects timestamps outside a tolerance (5 minutes by default).
Secrets are kept encrypted, not hashed: verifying an HMAC needs the secret itself.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from grader.lms.files import private_file

SIGNATURE_HEADER = "X-Grader-Signature"
TIMESTAMP_HEADER = "X-Grader-Timestamp"
# Names the integration whose secret signed the request (the signature itself is checked with it).
INTEGRATION_HEADER = "X-Grader-Integration"
TOLERANCE_SECONDS = 300
SECRET_PREFIX = "whsec_"
_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})")
_TIMESTAMP = re.compile(r"\d{1,12}")


class SignatureError(ValueError):
    """The request is not authentic or not fresh; the message says which, for the sender's developer."""


def _key(secret: bytes | str) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def sign(secret: bytes | str, timestamp: str, body: bytes) -> str:
    """The `X-Grader-Signature` value: `sha256=` and the hex HMAC of `timestamp.body`."""
    digest = hmac.new(_key(secret), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signed_headers(secret: bytes | str, body: bytes, now: float | None = None) -> dict[str, str]:
    """Both headers for an outgoing request, stamped with the current Unix time."""
    timestamp = str(int(time.time() if now is None else now))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(secret, timestamp, body)}


def verify(
    secret: bytes | str,
    signature_header: str | None,
    timestamp_header: str | None,
    body: bytes,
    now: float | None = None,
    tolerance: int = TOLERANCE_SECONDS,
) -> None:
    """Raise `SignatureError` unless the signature matches and the timestamp is within `tolerance` seconds.

    The signature is checked before the clock, so only an authentic request learns that its clock is off.
    """
    if not signature_header:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header")
    if not timestamp_header:
        raise SignatureError(f"missing {TIMESTAMP_HEADER} header")
    match = _SIGNATURE.fullmatch(signature_header.strip())
    if not match:
        raise SignatureError(f"malformed {SIGNATURE_HEADER}: expected 'sha256=' and 64 hex digits")
    if not _TIMESTAMP.fullmatch(timestamp_header.strip()):
        raise SignatureError(f"malformed {TIMESTAMP_HEADER}: expected Unix time in whole seconds")
    timestamp = timestamp_header.strip()
    expected = sign(secret, timestamp, body)
    if not hmac.compare_digest(expected.encode(), f"sha256={match.group(1).lower()}".encode()):
        raise SignatureError(
            "signature mismatch: sign the exact request body as HMAC-SHA256(secret, timestamp + '.' + body)"
        )
    skew = int(timestamp) - int(time.time() if now is None else now)
    if skew < -tolerance:
        raise SignatureError(f"stale timestamp: {-skew} s old, more than {tolerance} s (check the sender's clock)")
    if skew > tolerance:
        raise SignatureError(f"timestamp {skew} s in the future, more than {tolerance} s (check the sender's clock)")


def new_secret() -> str:
    """A fresh integration secret, shown once to whoever runs `grader lms add`."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


class SecretBoxError(ValueError):
    """A stored secret cannot be decrypted: the key file is not the one it was encrypted with."""


class SecretBox:
    """Encrypts integration secrets at rest with a Fernet key kept in the data directory (mode 0600).

    A database dump alone then reveals no secret; the key file and the database together do.
    """

    KEY_FILE = "lms-secrets.key"

    def __init__(self, data_dir: Path | str):
        self.key_path = Path(data_dir) / self.KEY_FILE
        self._fernet = Fernet(private_file(self.key_path, Fernet.generate_key))

    def encrypt(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SecretBoxError(
                f"cannot decrypt an integration secret with {self.key_path}: the key file was replaced; "
                "restore it or re-create the integration with `grader lms add`"
            ) from None
