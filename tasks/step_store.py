"""Where cached step results are kept, and why a result read back can be trusted.

A cached step's result is a Prefect result record: JSON metadata naming its serializer, and the value
pickled. Reading it back *unpickles* it, and unpickling runs whatever code the bytes ask for; the record
even names its own serializer, so a record that says "pickle" is unpickled by any reader. Whoever can
write to the result folder can therefore run code in every worker that reads it. On one machine that is
the user's own folder; on a fleet it is a shared mount, and the risk is real.

So every record is signed. ``SignedResultStorage`` writes ``MAGIC``, then an HMAC-SHA256 of (storage
key, record bytes) under the lab's secret key, then the record, atomically. On reading, a file whose
signature does not verify (no signature, another key, tampered or half-written bytes, a valid record
moved to another step's key) is never handed to Prefect: it counts as missing, so the step is computed
again and its result written anew, and a warning names the file. The check happens before Prefect parses
the record, so the serializer a record names cannot bypass it.

The key: ``$STRATLAB_RESULTS_KEY`` (any secret of at least 32 characters; give every worker of a fleet
the same one), else the file ``$STRATLAB_HOME/results.key`` (created on first use, mode 0600). A
worker with another key cannot read the others' results: it recomputes them, which is safe but slower.
Keep the key out of the shared folder: whoever can read it can sign.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import os
import secrets
from pathlib import Path

from prefect.filesystems import LocalFileSystem

from strategy_contract.io import atomic_write_bytes
from tasks.places import home, step_results_dir

MAGIC = b"stratlab-signed-result-v1\n"
KEY_ENV = "STRATLAB_RESULTS_KEY"
MIN_KEY_CHARS = 32
log = logging.getLogger("stratlab.step_store")


class UntrustedResult(ValueError):
    """A stored result whose signature does not verify; it is treated as missing, never unpickled."""


def key_file() -> Path:
    return home() / "results.key"


@functools.cache
def _key_from(env_value: str, path: str) -> bytes:
    if env_value:
        if len(env_value) < MIN_KEY_CHARS:
            raise ValueError(
                f"{KEY_ENV}: the key has {len(env_value)} characters; give at least {MIN_KEY_CHARS} "
                "(e.g. the output of `python -c 'import secrets; print(secrets.token_hex(32))'`)"
            )
        return env_value.encode()
    file = Path(path)
    if not file.exists():
        file.parent.mkdir(parents=True, exist_ok=True)
        try:  # O_EXCL: of two processes creating it at once, one writes and both read the same key
            fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_hex(32) + "\n")
    text = file.read_text().strip()
    if len(text) < MIN_KEY_CHARS:
        raise ValueError(f"{file}: the results key has under {MIN_KEY_CHARS} characters; delete the file")
    return text.encode()


def signing_key() -> bytes:
    """``$STRATLAB_RESULTS_KEY``, else the key file (made on first use)."""
    return _key_from(os.environ.get(KEY_ENV, "").strip(), str(key_file()))


def sign(storage_key: str, record: bytes) -> bytes:
    mac = hmac.new(signing_key(), storage_key.encode() + b"\0" + record, hashlib.sha256).hexdigest()
    return MAGIC + mac.encode() + b"\n" + record


def verify(storage_key: str, content: bytes) -> bytes:
    """The record inside ``content`` if its signature holds for ``storage_key``; UntrustedResult if not."""
    if not content.startswith(MAGIC):
        raise UntrustedResult("not signed by Strategy Lab")
    mac, sep, record = content[len(MAGIC) :].partition(b"\n")
    expected = hmac.new(signing_key(), storage_key.encode() + b"\0" + record, hashlib.sha256).hexdigest()
    if not sep or not hmac.compare_digest(mac, expected.encode()):
        raise UntrustedResult("its signature does not match (another key, or changed bytes)")
    return record


class SignedResultStorage(LocalFileSystem):
    """Prefect's local file system with every file signed on write and verified on read."""

    _block_type_name = "Strategy Lab Signed Results"

    def _storage_key(self, path: str) -> str:
        """What the signature binds to: the path relative to the result folder."""
        resolved = self._resolve_path(path)
        return resolved.relative_to(self._resolve_path(None)).as_posix()

    def _checked(self, path: str, content: bytes) -> bytes:
        try:
            return verify(self._storage_key(path), content)
        except UntrustedResult as exc:
            log.warning("step result %s is not trusted (%s): not read; the step runs again", path, exc)
            raise

    def _write(self, path: str, content: bytes) -> str:
        target = self._resolve_path(path)
        if target.exists() and not target.is_file():
            raise ValueError(f"Path {target} already exists and is not a file.")
        atomic_write_bytes(target, sign(self._storage_key(path), content))
        return str(target)

    async def aread_path(self, path: str) -> bytes:
        return self._checked(path, await super().aread_path(path))

    def read_path(self, path: str, _sync: bool | None = None) -> bytes:
        return self._checked(path, super().read_path(path, _sync=True))

    async def awrite_path(self, path: str, content: bytes) -> str:
        return self._write(path, content)

    def write_path(self, path: str, content: bytes, _sync: bool | None = None) -> str:
        return self._write(path, content)


def step_store() -> SignedResultStorage:
    """The storage of cached step results: signed files under ``step_results_dir()``."""
    return SignedResultStorage(basepath=str(step_results_dir()))
