"""The manifest: a JSON file in the output directory recording every frame that was rendered and
written, so that running the same command again renders only what is missing or stale.

    {"format": "nbnumba-batch-manifest/1", "command": "sweep", "updated": "...Z",
     "frames": {"1": {"hash": "<sha256>", "argv": [...], "files": [...], "finished": "...Z",
                      "seconds": 0.21, "host": "...", "pid": 123, "worker": "tcp://...", ...}},
     "failed": {"3": {"hash": "...", "label": "row 3 (line 6)", "error": "...", "finished": "...Z"}}}

A frame is done when its entry's hash equals the frame's hash now (its argv, its input files'
size and modification time, the nbnumba version) and every file it names exists.  The file is
only ever replaced whole (written to a temporary name, then renamed), under a lock
(.MANIFEST.lock beside it) held only while it is read and rewritten, so that commands rendering
parts of one sweep into the same directory at the same time keep each other's records.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import json
import os
import time

from ..errors import RuntimeFailure, UserError
from ..io.atomic import atomic_write_bytes

FORMAT = "nbnumba-batch-manifest/1"


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _order(key: str):
    return (0, int(key), "") if key.isdigit() else (1, 0, key)


def dumps(data: dict) -> str:
    """JSON with one line per frame, frames in numerical order."""
    lines = ["{"]
    items = [(k, v) for k, v in data.items() if k not in ("frames", "failed")]
    for k, v in items:
        lines.append(f" {json.dumps(k)}: {json.dumps(v)},")
    for section in ("frames", "failed"):
        entries = data.get(section, {})
        keys = sorted(entries, key=_order)
        lines.append(f" {json.dumps(section)}: {{" + ("" if keys else "}" + ("," if section == "frames" else "")))
        for i, key in enumerate(keys):
            lines.append(f"  {json.dumps(key)}: {json.dumps(entries[key])}" + ("," if i < len(keys) - 1 else ""))
        if keys:
            lines.append(" }" + ("," if section == "frames" else ""))
    lines.append("}")
    return "\n".join(lines) + "\n"


class Manifest:
    """The manifest of one output directory and prefix.

    Several commands may share it (parts of one sweep with `-first`, run at the same time): each
    flush takes the lock, re-reads the file, applies this process's new records and writes it
    back, so no process loses another's entries."""

    def __init__(self, path: str, command: str):
        self.path, self.command = path, command
        self.lock_path = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".lock")
        self.data = self._empty()
        self._changes: dict = {}  # key -> ("frames" | "failed", entry)
        self._values: dict = {}  # (name, key) -> value, see set_value
        self._last_write = 0.0

    def _empty(self) -> dict:
        return {"format": FORMAT, "command": self.command, "created": now(), "frames": {}, "failed": {}}

    # -- life cycle

    def open(self) -> "Manifest":
        folder = os.path.dirname(self.path)
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as err:
            raise RuntimeFailure(f"cannot create {folder}: {err.strerror or err}") from None
        with self._locked():
            self.data = self._read()
        return self

    def close(self) -> None:
        """Nothing is held between flushes; kept for symmetry with open()."""

    @contextlib.contextmanager
    def _locked(self):
        try:
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise RuntimeFailure(f"cannot write {self.lock_path}: {err.strerror or err}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _read(self) -> dict:
        if not os.path.exists(self.path):
            return self._empty()
        try:
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                raise ValueError("not an nbnumba batch manifest")
        except (OSError, ValueError) as err:
            raise UserError(f"cannot read {self.path}: {err} (move it away to start over)") from None
        data.setdefault("frames", {})
        data.setdefault("failed", {})
        return data

    # -- queries and updates

    def is_done(self, frame) -> bool:
        entry = self.data["frames"].get(frame.key)
        return (entry is not None and entry.get("hash") == frame.digest
                and all(os.path.exists(path) for path in frame.files))

    def record(self, frame, result: dict, worker: str | None = None) -> None:
        entry = {"hash": frame.digest, "label": frame.label, "argv": list(frame.argv),
                 "files": list(frame.files), "finished": now()}
        for name in ("seconds", "host", "pid", "device", "cuda_visible_devices", "max_I", "mean"):
            if result.get(name) is not None:
                entry[name] = result[name]
        if worker:
            entry["worker"] = worker
        self._changes[frame.key] = ("frames", entry)
        self._apply(self.data, frame.key, "frames", entry)

    def set_value(self, name: str, key: str, value) -> None:
        """A job-wide value kept beside the frames (data[name][key] = value), e.g. the int scale
        a sweep chose, so that resuming it uses the same one."""
        self._values[(name, key)] = value
        self.data.setdefault(name, {})[key] = value

    def record_failure(self, key: str, label: str, error: str, digest: str | None = None) -> None:
        entry = {"hash": digest, "label": label, "error": error, "finished": now()}
        self._changes[key] = ("failed", entry)
        self._apply(self.data, key, "failed", entry)

    @staticmethod
    def _apply(data: dict, key: str, section: str, entry: dict) -> None:
        data[section][key] = entry
        if section == "frames":
            data["failed"].pop(key, None)

    def flush(self, force: bool = True, every: float = 0.5) -> None:
        """Write this process's new records (at most every `every` seconds unless forced)."""
        if not (self._changes or self._values) or (not force and time.monotonic() - self._last_write < every):
            return
        with self._locked():
            data = self._read()
            for key, (section, entry) in self._changes.items():
                self._apply(data, key, section, entry)
            for (name, key), value in self._values.items():
                data.setdefault(name, {})[key] = value
            data["updated"] = now()
            data["command"] = self.command
            atomic_write_bytes(self.path, dumps(data).encode())
        self.data = data
        self._changes = {}
        self._values = {}
        self._last_write = time.monotonic()
