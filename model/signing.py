"""Artefact signatures: what makes a model file safe to unpickle.

A pickle runs code when loaded, and its sha256 sits in ``metadata.json`` beside it, where anyone
who can write the artefact (a registry, an ``out/``, a champion image) can rewrite both. So every
artefact ``train`` writes also gets ``signature.json``: each file's sha256 and an HMAC-SHA256 over
them with a key that is never stored beside an artefact. Nothing is unpickled unless that MAC
checks with the key held here (``model/artifact.py``), and the check reads only bytes and JSON.

The key: ``$ML_CICD_SIGNING_KEY`` (CI passes its secret store's ``ML_CICD_SIGNING_KEY`` this way:
a repository secret, so every CI run, and whoever holds the secret, can check what CI signed),
else the file ``$ML_CICD_SIGNING_KEY_FILE`` (default ``~/.config/ml-cicd/signing-key``, mode 0600),
which ``train`` creates with 32 random bytes when there is neither. A symmetric key rather than
a key pair: the same few parties sign and check, and a MAC needs no new dependency.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import tempfile
from pathlib import Path

from model.codec import read_record, write_record
from model.errors import ArtifactError
from model.files import sha256_file
from model.records import Signature

KEY_ENV = "ML_CICD_SIGNING_KEY"
KEY_FILE_ENV = "ML_CICD_SIGNING_KEY_FILE"
SIGNATURE_FILE = Signature.FILE
MIN_KEY_BYTES = 16


class SignatureError(ArtifactError):
    """An artefact's signature is missing, made with another key, or does not match its files.

    ``tampered``: the signature is this key's and the artefact does not match it (a forgery or a
    change after signing), as opposed to one this key cannot speak for.
    """

    def __init__(self, message: str, tampered: bool = False) -> None:
        """Keep the message and whether the artefact was changed under this key's signature."""
        super().__init__(message)
        self.tampered = tampered


def key_path() -> Path:
    """Return where the key file is: ``$ML_CICD_SIGNING_KEY_FILE``, else under the user's config directory."""
    configured = os.environ.get(KEY_FILE_ENV)
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "ml-cicd" / "signing-key"


def signing_key(create: bool = False) -> bytes | None:
    """Return the key (the environment's, else the key file's); ``create`` makes the file when there is none."""
    value = os.environ.get(KEY_ENV, "").strip()
    if value:
        key = value.encode()
        if len(key) < MIN_KEY_BYTES:
            raise SignatureError(
                f"${KEY_ENV} is {len(key)} bytes; a signing key needs at least {MIN_KEY_BYTES}"
            )
        return key
    path = key_path()
    try:
        key = path.read_bytes().strip()
    except FileNotFoundError:
        return _create_key(path) if create else None
    if len(key) < MIN_KEY_BYTES:
        raise SignatureError(f"{path}: signing key is {len(key)} bytes; expected at least {MIN_KEY_BYTES}")
    return key


def _create_key(path: Path) -> bytes:
    """Write a new random key to ``path`` (mode 0600) unless another process just did; return the key."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=".signing-key.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(secrets.token_hex(32).encode() + b"\n")
        os.link(tmp, path)  # fails if the file appeared meanwhile: then that key wins
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    return path.read_bytes().strip()


def key_id(key: bytes) -> str:
    """Return the key's public name: the first 16 hex digits of its sha256."""
    return hashlib.sha256(key).hexdigest()[:16]


def _mac(key: bytes, key_name: str, files: dict[str, str]) -> str:
    message = json.dumps({"files": files, "key_id": key_name}, sort_keys=True).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def sign(directory: Path, names: tuple[str, ...], key: bytes) -> Signature:
    """Write ``signature.json`` for the files ``names`` of ``directory``; return it."""
    files = {name: sha256_file(Path(directory) / name) for name in names}
    signature = Signature(key_id(key), files, _mac(key, key_id(key), files))
    write_record(Path(directory) / SIGNATURE_FILE, signature)
    return signature


def verify(directory: Path, names: tuple[str, ...], key: bytes | None, what: str = "") -> Signature:
    """Check ``directory``'s signature with ``key`` and that it covers ``names`` with their current bytes.

    Raise :class:`SignatureError` saying why not (no key here, unsigned, another key, a forged or
    changed file). Only JSON and file bytes are read.
    """
    where = f"{directory}{f' ({what})' if what else ''}"
    path = Path(directory) / SIGNATURE_FILE
    if not path.is_file():
        raise SignatureError(
            f"{where}: the artefact is not signed (no {SIGNATURE_FILE}); refusing to load it"
        )
    signature = read_record(path, Signature)
    if key is None:
        raise SignatureError(
            f"{where}: cannot check its signature: no signing key here (set ${KEY_ENV}, or "
            f"${KEY_FILE_ENV} / {key_path()}); refusing to load it"
        )
    if signature.key_id != key_id(key):
        raise SignatureError(
            f"{where}: signed with key {signature.key_id}, not with this key ({key_id(key)}); "
            "refusing to load it"
        )
    if not hmac.compare_digest(signature.mac, _mac(key, signature.key_id, signature.files)):
        raise SignatureError(
            f"{where}: {SIGNATURE_FILE} was changed after signing; refusing a forged artefact"
        )
    for name in names:
        expected = signature.files.get(name)
        if expected is None:
            raise SignatureError(
                f"{where}: {name} is not covered by its signature; refusing to load it", True
            )
        actual = sha256_file(Path(directory) / name) if (Path(directory) / name).is_file() else "missing"
        if actual != expected:
            raise SignatureError(
                f"{where}: {name} is not the file that was signed (sha256 {actual[:12]}, signed "
                f"{expected[:12]}); refusing a tampered artefact",
                tampered=True,
            )
    return signature
