"""A parsed -hkl table is stored on disk and loaded by later runs: the same table as a fresh parse,
never a stale one, and no run fails because of the cache."""

from __future__ import annotations

import os

import numpy as np
import pytest

from nbnumba.errors import UserError
from nbnumba.io import hkl as hkl_file
from nbnumba.model import table_cache

TEXT = "0 0 1 10.5\n1 -2 3 20.25\n2 1.1 0 7\n-1 0 0 3\n"  # k = 1.1: a non-integer index, warned about


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NBNUMBA_CACHE_DIR", str(tmp_path / "cache"))
    parsed = []
    real = hkl_file.parse_hkl

    def counting(path, data, default_F):
        parsed.append(path)
        return real(path, data, default_F)

    monkeypatch.setattr(hkl_file, "parse_hkl", counting)
    return parsed


def fields(table):
    return (table.h_min, table.h_max, table.k_min, table.k_max, table.l_min, table.l_max, table.count,
            table.warnings)


def test_a_second_read_loads_the_table_the_first_parsed(cache, tmp_path):
    path = tmp_path / "F.hkl"
    path.write_text(TEXT)
    first = table_cache.read_hkl(str(path), 2.0)
    second = table_cache.read_hkl(str(path), 2.0)
    assert cache == [str(path)]
    fresh = hkl_file.read_hkl(str(path), 2.0)
    for table in (first, second):
        assert fields(table) == fields(fresh)
        assert np.array_equal(table.grid, fresh.grid)
    assert second.grid[1 - fresh.h_min, -2 - fresh.k_min, 3 - fresh.l_min] == 20.25
    assert len(second.warnings) == 1 and "non-integer k = 1.1" in second.warnings[0]


def test_new_bytes_or_another_default_F_are_parsed_again(cache, tmp_path):
    path = tmp_path / "F.hkl"
    path.write_text(TEXT)
    table_cache.read_hkl(str(path), 2.0)
    path.write_text(TEXT.replace("10.5", "99.5"))  # same size: only the bytes tell
    changed = table_cache.read_hkl(str(path), 2.0)
    assert changed.grid[0 - changed.h_min, 0 - changed.k_min, 1 - changed.l_min] == 99.5
    other = table_cache.read_hkl(str(path), 5.0)
    assert other.grid[1 - other.h_min, 1 - other.k_min, 1 - other.l_min] == 5.0
    assert len(cache) == 3


def test_an_unwritable_folder_or_a_damaged_entry_only_costs_a_parse(cache, tmp_path, monkeypatch):
    path = tmp_path / "F.hkl"
    path.write_text(TEXT)
    table_cache.read_hkl(str(path), 0.0)
    for entry in table_cache.folder().glob("*.npy"):
        entry.write_bytes(b"not an array")
    assert table_cache.read_hkl(str(path), 0.0).grid.sum() == pytest.approx(40.75)
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the cache folder would be")
    monkeypatch.setenv("NBNUMBA_CACHE_DIR", str(blocked))
    assert table_cache.read_hkl(str(path), 0.0).count == 4
    assert len(cache) == 3


def test_a_malformed_file_fails_as_without_the_cache_and_stores_nothing(cache, tmp_path):
    path = tmp_path / "F.hkl"
    path.write_text("1 2 3 4\n5 6 x 8\n")
    for _ in range(2):
        with pytest.raises(UserError, match="line 2: 'x' is not a number"):
            table_cache.read_hkl(str(path), 0.0)
    assert not table_cache.folder().exists() or not any(table_cache.folder().iterdir())
    assert len(cache) == 2


def test_the_entries_used_last_are_kept(cache, tmp_path, monkeypatch):
    monkeypatch.setattr(table_cache, "KEEP", 3)
    paths = [tmp_path / f"F{n}.hkl" for n in range(5)]
    for n, path in enumerate(paths):
        path.write_text(f"0 0 0 {n + 1}\n")
    clock = iter(range(10**9, 10**9 + 100))
    real_utime = table_cache.os.utime

    def ordered(target, times=None):  # a second apart, whatever the file system's resolution
        now = next(clock)
        real_utime(target, (now, now))

    monkeypatch.setattr(table_cache.os, "utime", ordered)
    monkeypatch.setattr(table_cache.os, "replace", lambda a, b: (os.rename(a, b), ordered(b)))
    for path in paths[:3]:
        table_cache.read_hkl(str(path), 0.0)
    table_cache.read_hkl(str(paths[0]), 0.0)  # F0 used again: F1 is now the least recently used
    for path in paths[3:]:
        table_cache.read_hkl(str(path), 0.0)
    assert len(list(table_cache.folder().glob("*.npy"))) == 3
    cache.clear()
    for n in (0, 3, 4):
        assert table_cache.read_hkl(str(paths[n]), 0.0).grid[0, 0, 0] == n + 1
    assert cache == []
    table_cache.read_hkl(str(paths[1]), 0.0)
    assert cache == [str(paths[1])]
