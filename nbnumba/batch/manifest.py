"""The manifest: a JSON file in the output directory recording every frame that was rendered and
written, so that running the same command again renders only what is missing or stale.

    {"format": "nbnumba-batch-manifest/1", "command": "sweep", "updated": "...Z",
     "frames": {"1": {"hash": "<sha256>", "argv": [...], "files": [...], "finished": "...Z",
                      "seconds": 0.21, "host": "...", "pid": 123, "worker": "tcp://...", ...}},
     "failed": {"3": {"hash": "...", "label": "row 3 (line 6)", "error": "...", "finished": "...Z"}}}

A frame is done when its entry's hash equals the frame's hash now (its argv, its input files'
size and modification time, the nbnumba version) and every file it names exists.  The file is
only ever replaced whole (written to a temporary name, then renamed), and one process at a time
may use a manifest (an flock on .MANIFEST.lock beside it, released by the system if the process dies).
"""

from __future__ import annotations

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
    def __init__(self, path: str, command: str):
        self.path, self.command = path, command
        self.data = {"format": FORMAT, "command": command, "created": now(), "frames": {}, "failed": {}}
        self._lock_fd = None
        self._dirty = False
        self._last_write = 0.0

    # -- life cycle

    def open(self) -> "Manifest":
        folder = os.path.dirname(self.path)
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as err:
            raise RuntimeFailure(f"cannot create {folder}: {err.strerror or err}") from None
        lock = os.path.join(folder, "." + os.path.basename(self.path) + ".lock")
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise RuntimeFailure(f"cannot write {lock}: {err.strerror or err}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise UserError(f"{self.path} is in use by another nbnumba sweep/batch (wait for it, "
                            f"or give another -outdir/-prefix)") from None
        self._lock_fd = fd
        if os.path.exists(self.path):
            try:
                with open(self.path, encoding="utf-8") as f:
                    data = json.load(f)
                if not isinstance(data, dict) or data.get("format") != FORMAT:
                    raise ValueError("not an nbnumba batch manifest")
            except (OSError, ValueError) as err:
                self.close()
                raise UserError(f"cannot read {self.path}: {err} (move it away to start over)") from None
            data.setdefault("frames", {})
            data.setdefault("failed", {})
            self.data = data
        return self

    def close(self) -> None:
        if self._lock_fd is not None:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            finally:
                os.close(self._lock_fd)
                self._lock_fd = None

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
        self.data["frames"][frame.key] = entry
        self.data["failed"].pop(frame.key, None)
        self._dirty = True

    def record_failure(self, key: str, label: str, error: str, digest: str | None = None) -> None:
        self.data["failed"][key] = {"hash": digest, "label": label, "error": error, "finished": now()}
        self._dirty = True

    def flush(self, force: bool = True, every: float = 0.5) -> None:
        """Write the manifest if it changed (at most every `every` seconds unless forced)."""
        if not self._dirty or (not force and time.monotonic() - self._last_write < every):
            return
        self.data["updated"] = now()
        self.data["command"] = self.command
        atomic_write_bytes(self.path, dumps(self.data).encode())
        self._dirty = False
        self._last_write = time.monotonic()
