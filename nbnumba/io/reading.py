"""Reading an input file whole, with a one-line error naming it when that fails.

A gzip-compressed file (recognised by its magic bytes, whatever its name) is decompressed on the
way in, so `scaled.hkl.gz`, a gzipped matrix, source list, table or SMV image reads as the plain
file would."""

from __future__ import annotations

import gzip
import zlib

from ..errors import UserError

GZIP_MAGIC = b"\x1f\x8b"


def read_bytes(path) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror or e}") from None
    if data.startswith(GZIP_MAGIC):
        try:
            return gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as e:
            raise UserError(f"cannot read {path}: damaged gzip data ({e})") from None
    return data


def read_text(path) -> str:
    return read_bytes(path).decode("utf-8", errors="replace")
