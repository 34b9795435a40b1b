"""Parsed -hkl tables kept on disk between runs.

Parsing a text HKL file is most of a run's set-up (the supervisor's 1.35 MB scaled.hkl: ~0.12 s
of its 0.13 s, converting a quarter of a million numbers), and nanoBragg's users run the same
file again and again from shell loops.  The table is the same for the same bytes, default_F and
parser (and its warnings name the path), so a run stores what it parsed beside the compiled code
(NBNUMBA_CACHE_DIR, else ~/.cache/nbnumba) under a hash of the four, and a later run loads it (a
few milliseconds).

The cache never decides an outcome: a file that cannot be read or parsed fails as it would
without it (nothing is stored for it), and a folder that cannot be written, or an entry that
cannot be read back, only means the file is parsed again.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from ..io import hkl as hkl_file
from ..io.reading import read_bytes
from ..runtime.cache_folder import cache_folder

KEEP = 32  # entries kept; the least recently used beyond them are removed
_PARSER = Path(hkl_file.__file__)


def folder() -> Path:
    return Path(cache_folder()) / "tables"


def _key(path, data: bytes, default_F: float) -> str:
    digest = hashlib.blake2b(data, digest_size=16)
    digest.update(os.fsencode(path))  # the warnings name the file
    digest.update(np.float64(default_F).tobytes())
    digest.update(_PARSER.read_bytes())
    return digest.hexdigest()


def _load(entry: Path) -> hkl_file.HKLTable | None:
    try:
        fields = json.loads(entry.with_suffix(".json").read_text())
        grid = np.load(entry.with_suffix(".npy"), allow_pickle=False)
        table = hkl_file.HKLTable(grid=grid, **fields)
    except (OSError, ValueError, TypeError, EOFError):
        return None
    # the reference's grid: one layer more than the indices span, along each axis
    spans = (table.h_max - table.h_min, table.k_max - table.k_min, table.l_max - table.l_min)
    if grid.dtype != np.float64 or grid.shape != tuple(n + 2 for n in spans):
        return None
    with contextlib.suppress(OSError):
        os.utime(entry.with_suffix(".json"))  # used now: pruned last
    return table


def _store(entry: Path, table: hkl_file.HKLTable) -> None:
    fields = {f.name: getattr(table, f.name) for f in dataclasses.fields(table) if f.name != "grid"}
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        # the grid first: an entry is complete once its .json is in place
        for suffix, write in ((".npy", lambda f: np.save(f, table.grid, allow_pickle=False)),
                              (".json", lambda f: f.write(json.dumps(fields).encode()))):
            fd, temporary = tempfile.mkstemp(dir=entry.parent, prefix=".part-")
            try:
                with os.fdopen(fd, "wb") as f:
                    write(f)
                os.replace(temporary, entry.with_suffix(suffix))
            finally:
                if os.path.exists(temporary):
                    os.unlink(temporary)
        _prune(entry.parent)
    except OSError:
        return


def _prune(where: Path) -> None:
    entries = sorted(where.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[KEEP:]:
        for suffix in (".json", ".npy"):
            old.with_suffix(suffix).unlink(missing_ok=True)


def read_hkl(path, default_F: float) -> hkl_file.HKLTable:
    """`io.hkl.read_hkl`, from the cache when this file's bytes were parsed before."""
    data = read_bytes(path)
    entry = folder() / _key(path, data, default_F)
    table = _load(entry)
    if table is None:
        table = hkl_file.parse_hkl(path, data, default_F)
        _store(entry, table)
    return table
