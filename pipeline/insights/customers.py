"""The customer's identity, hashed: a caller number or an e-mail address becomes a keyed hash
(HMAC-SHA256 with a secret kept beside the results, ``OUT/.callqa-customer.key``), so that
repeat contacts, surveys and ACD records can be matched to the same customer while no result,
report or database holds the number or address, and the hash cannot be reversed by hashing
every possible phone number without the key."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path

from pipeline.errors import CallqaError

KEY_FILE = ".callqa-customer.key"
HASH_CHARS = 16


class CustomerKeyError(CallqaError):
    """The customer key file cannot be read or made (names the file)."""


def normalize(value: str) -> str | None:
    """An e-mail address lower-cased; a phone number as its last 10 digits (so +1 555 010 2030,
    (555) 010-2030 and 5550102030 are one customer); None when ``value`` is neither."""
    text = (value or "").strip()
    if "@" in text:
        return text.lower()
    digits = re.sub(r"\D", "", text)
    return digits[-10:] if len(digits) >= 6 else None


def customer_hash(value: str, key: bytes) -> str | None:
    """The keyed hash of a caller number or e-mail address (None when ``value`` is neither)."""
    norm = normalize(value)
    if norm is None:
        return None
    return hmac.new(key, norm.encode("utf-8"), hashlib.sha256).hexdigest()[:HASH_CHARS]


def load_key(out_dir: str | Path, create: bool = True) -> bytes:
    """The results folder's customer key (32 random bytes, made on first use, mode 0600)."""
    path = Path(out_dir) / KEY_FILE
    try:
        key = bytes.fromhex(path.read_text(encoding="ascii").strip())
        if len(key) < 16:
            raise ValueError("shorter than 16 bytes")
        return key
    except FileNotFoundError:
        if not create:
            raise CustomerKeyError(f"{path}: no customer key (the results folder has no hashed customers yet)") from None
    except (OSError, ValueError) as e:
        raise CustomerKeyError(f"{path}: cannot read the customer key: {e}") from e
    key = secrets.token_bytes(32)
    tmp = path.with_name(f"{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(key.hex() + "\n")
        os.link(tmp, path)  # whole or not at all; fails if another process made it first
    except FileExistsError:
        return load_key(out_dir, create=False)
    except OSError as e:
        raise CustomerKeyError(f"{path}: cannot make the customer key: {e.strerror or e}") from e
    finally:
        tmp.unlink(missing_ok=True)
    return key
