"""A restic key file re-wrapped with cheap scrypt parameters, for the tests' template repository.

`restic init` calibrates scrypt to take a good part of a second on this machine (N 32768, p up to
7), and every restic command pays it again to open the repository; restic 0.14 has no option to
ask for less. The tests prove backups and restores, not the strength of the password's key
derivation, so the template's one key file is replaced by one that wraps the same master key
under N=1024: the repository, its master key and everything encrypted with it stay as `init`
wrote them. The format is restic's design document's ("Keys, Encryption and MAC",
https://restic.readthedocs.io/en/stable/100_references.html#keys-encryption-and-mac): scrypt
derives 64 bytes from the password, the first 32 the AES-256 key, the last 32 the Poly1305-AES
MAC key (16 bytes AES key k, 16 bytes r); `data` is IV || AES-256-CTR ciphertext || MAC.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from typing import Any

from cryptography.hazmat.primitives import poly1305
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from contract.layout import RESTIC_PREFIX

CHEAP_SCRYPT = {"N": 1024, "r": 8, "p": 1}


def _user_key(password: str, salt: bytes, params: dict[str, int]) -> bytes:
    n, r, p = params["N"], params["r"], params["p"]
    return hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=64,
                          maxmem=128 * r * (n + p + 2) + (1 << 20))


def _mac(user_key: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    """Poly1305-AES: the one-time key is r || AES_k(IV)."""
    k, r = user_key[32:48], user_key[48:]
    encryptor = Cipher(algorithms.AES(k), modes.ECB()).encryptor()
    return poly1305.Poly1305.generate_tag(r + encryptor.update(iv) + encryptor.finalize(),
                                          ciphertext)


def _ctr(user_key: bytes, iv: bytes, data: bytes) -> bytes:
    cipher = Cipher(algorithms.AES(user_key[:32]), modes.CTR(iv)).encryptor()
    return cipher.update(data) + cipher.finalize()


def cheap_key_file(key_file: bytes, password: str) -> tuple[str, bytes]:
    """The key file, wrapping the same master key under CHEAP_SCRYPT, and its name (restic names
    every file by the SHA-256 of its content). A wrong password raises ValueError."""
    document = json.loads(key_file)
    old = _user_key(password, base64.b64decode(document["salt"]), document)
    data = base64.b64decode(document["data"])
    iv, ciphertext, tag = data[:16], data[16:-16], data[-16:]
    if _mac(old, iv, ciphertext) != tag:
        raise ValueError("the key file does not open with this password")
    master = _ctr(old, iv, ciphertext)
    salt, iv = os.urandom(64), os.urandom(16)
    new = _user_key(password, salt, CHEAP_SCRYPT)
    ciphertext = _ctr(new, iv, master)
    body = json.dumps({**document, **CHEAP_SCRYPT, "salt": base64.b64encode(salt).decode(),
                       "data": base64.b64encode(iv + ciphertext + _mac(new, iv, ciphertext))
                       .decode()}).encode()
    return hashlib.sha256(body).hexdigest(), body


def cheapen_repository_key(s3: Any, bucket: str, password: str) -> None:
    """The bucket's restic repository (one key, as `init` leaves it) opens with cheap scrypt
    parameters from now on: same repository, same master key."""
    [key] = s3.list_objects_v2(Bucket=bucket, Prefix=f"{RESTIC_PREFIX}keys/")["Contents"]
    name, body = cheap_key_file(s3.get_object(Bucket=bucket, Key=key["Key"])["Body"].read(),
                                password)
    s3.put_object(Bucket=bucket, Key=f"{RESTIC_PREFIX}keys/{name}", Body=body)
    s3.delete_object(Bucket=bucket, Key=key["Key"])
