"""Roles and token secrets, free of any framework: the store keeps hashes, the CLI and the app make tokens.

Secrets are 256 random bits, so a plain SHA-256 is a safe way to keep them (no salt or slow hash
is needed, as it would be for passwords) and lets a request's token be found by its hash.
"""

from __future__ import annotations

import hashlib
import secrets

ROLES = ("student", "instructor")


def new_secret() -> str:
    return "grd_" + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
