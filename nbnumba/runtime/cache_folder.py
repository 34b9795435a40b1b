"""The folder nbnumba keeps its caches in: NBNUMBA_CACHE_DIR, else nbnumba/ in the user's cache
folder (XDG_CACHE_HOME, else ~/.cache).  The compiled code (`jitcache`), the parsed structure-factor
tables (`model.table_cache`) and the batch workers' launcher (`batch.quiet`) each keep theirs in it."""

from __future__ import annotations

import os


def cache_folder() -> str:
    return os.environ.get("NBNUMBA_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "nbnumba")
