"""Many shots: `nbnumba refine -list SHOTS.csv`, each row's fit one task of the Dask cluster that
`batch` uses (nbnumba.batch.cluster: embedded worker processes, or -scheduler ADDRESS), resumable.

SHOTS.csv is a batch job file (docs/batch.md: `# base:` lines, a header, a row per shot) with a
`data` column (the shot's image) and optionally `frame`; the other columns and the base are the
shot's starting flags, after the command line's.  Row N writes DIR/NAME_0000N.json, .flags,
_model.bin and .png (NAME: the list's name), and the table's row is printed as it completes.  A
shot is done when its JSON holds the digest of its flags, options and data file (size and time):
run again, the command refines only the shots not done, so an interrupted run loses no finished
shot and refines none twice.  The manifest DIR/NAME_manifest.json records each shot as batch's
does; DIR/NAME_refined.csv gathers every done shot's values and errors at the end."""

from __future__ import annotations

import csv
import io
import json
import os
import time
from dataclasses import dataclass

from ..errors import UserError
from ..runtime import interrupt

OWN = ("data", "frame")
GRACE_S = 5.0  # after a signal: cancel the tasks and save the manifest


@dataclass(frozen=True)
class Shot:
    key: str  # the row number
    label: str
    argv: tuple  # the starting flags
    options: tuple  # refine's options, (name, value) pairs, with data, frame and out
    digest: str
    files: tuple


def read_shots(path: str, options: dict, flags: list[str], outdir: str) -> list[Shot]:
    from ..batch.frames import absolute_paths, cell_tokens, digest, read_jobfile
    from ..model.options import parse_args
    from ..refine.outputs import paths

    base, columns, rows = read_jobfile(path, OWN)
    if not any(c.own and c.name == "data" for c in columns):
        raise UserError(f"{path}: no data column (each row's image)")
    name = os.path.splitext(os.path.basename(path))[0]
    digits = max(5, len(str(len(rows))))
    shots = []
    for number, lineno, cells in rows:
        where = f"{path} line {lineno}"
        if len(cells) > len(columns) and any(c.strip() for c in cells[len(columns):]):
            raise UserError(f"{where}: {len(cells)} cells but the header names {len(columns)} columns")
        argv = list(base) + list(flags)
        own = dict(options)
        for col, cell in zip(columns, cells):
            tokens = cell_tokens(col, cell, where)
            if col.own and tokens:
                own[col.name] = int(tokens[1]) if col.name == "frame" and tokens[1].isdigit() else tokens[1]
            elif not col.own:
                argv += tokens
        if "data" not in own:
            raise UserError(f"{where}: no data (the shot's image)")
        if not str(own.get("frame", 1)).isdigit():
            raise UserError(f"{where}: frame must be a whole number from 1, got {own['frame']!r}")
        argv = absolute_paths(argv)
        own["data"] = os.path.abspath(own["data"])
        own["out"] = os.path.abspath(os.path.join(outdir, f"{name}_{number:0{digits}d}"))
        try:
            params = parse_args(argv)
        except UserError as err:
            raise UserError(f"{where}: {err}") from None
        try:
            stat = os.stat(own["data"])
            data_stat = [stat.st_size, stat.st_mtime_ns]
        except OSError:
            data_stat = "missing"
        fingerprint = digest(argv + [json.dumps(own, sort_keys=True), json.dumps(data_stat)], params)
        shots.append(Shot(str(number), f"row {number} (line {lineno})", tuple(argv), tuple(sorted(own.items())),
                          fingerprint, tuple(paths(own["out"]).values())))
    return shots


def is_done(shot: Shot) -> bool:
    """Its files are all there and its JSON says it was refined from these inputs."""
    if not all(os.path.exists(f) for f in shot.files):
        return False
    try:
        with open(dict(shot.options)["out"] + ".json", encoding="utf-8") as f:
            return json.load(f).get("digest") == shot.digest
    except (OSError, ValueError):
        return False


def refine_task(shot: Shot, threads: int = 0) -> dict:
    """On a worker: refine one shot and write its files; a user's mistake comes back as the
    shot's error (one line), anything else raises so that Dask retries it."""
    import numba

    from ..runtime.threads import set_threads
    from ..refine.shot import refine_shot

    t0 = time.perf_counter()
    if threads:
        set_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    try:
        result = refine_shot(dict(shot.options), list(shot.argv), extra={"digest": shot.digest, "row": shot.key})
    except UserError as err:
        return {"key": shot.key, "ok": False, "error": str(err), "seconds": time.perf_counter() - t0}
    return {"key": shot.key, "ok": True, "error": None, "seconds": time.perf_counter() - t0,
            "names": list(result.names), "values": [float(v) for v in result.values],
            "errors": [float(e) for e in result.errors], "loss": result.loss, "converged": result.converged}


def row_line(key: str, outcome: dict) -> str:
    if not outcome.get("ok"):
        return f"shot {key}: failed: {outcome['error']}"
    pairs = " ".join(f"{n}={v:.10g}+-{e:.3g}" for n, v, e in zip(outcome["names"], outcome["values"],
                                                                  outcome["errors"]))
    state = "converged" if outcome["converged"] else "not converged"
    return f"shot {key}: {pairs} loss={outcome['loss']:.10g} {state} {outcome['seconds']:.2f} s"


def summary_csv(shots: list[Shot]) -> bytes:
    """Every done shot's refined values and errors, one row per shot."""
    rows, names = [], []
    for shot in shots:
        try:
            with open(dict(shot.options)["out"] + ".json", encoding="utf-8") as f:
                document = json.load(f)
        except (OSError, ValueError):
            continue
        if document.get("digest") != shot.digest:
            continue
        row = {"row": shot.key, "data": dict(shot.options)["data"], "loss": document["loss"],
               "converged": document["converged"]}
        for p in document["parameters"]:
            row[p["name"]], row[p["name"] + "_error"] = p["refined"], p["error"]
            if p["name"] not in names:
                names.append(p["name"])
        rows.append(row)
    out = io.StringIO()
    writer = csv.DictWriter(out, ["row", "data"] + [x for n in names for x in (n, n + "_error")]
                            + ["loss", "converged"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def run_list(options: dict, flags: list[str], echo, note) -> int:
    """Refine every shot not done yet; returns the exit status (1 when a shot failed)."""
    from ..batch.cluster import start
    from ..batch.manifest import Manifest
    from ..io.atomic import atomic_write_bytes

    listing = options.pop("list")
    outdir = options.pop("outdir", ".")
    scheduler, workers = options.pop("scheduler", None), options.pop("workers", None)
    progress = not options.get("noprogress", False)
    if "out" in options or "data" in options:
        raise UserError("-list: each shot's image comes from its row's data column and its files go to -outdir")
    shots = read_shots(listing, options, flags, outdir)
    name = os.path.splitext(os.path.basename(listing))[0]
    manifest = Manifest(os.path.abspath(os.path.join(outdir, f"{name}_manifest.json")),
                        "nbnumba refine -list " + listing).open()
    todo = [s for s in shots if not is_done(s)]
    if progress:
        note(f"refine: {len(shots)} shots, {len(shots) - len(todo)} done before, {len(todo)} to refine")
    failed = 0
    engine = start(scheduler, workers, False, len(todo)) if todo else None
    try:
        if engine is not None:
            failed = _refine_all(engine, todo, manifest, echo)
    finally:
        # before the cluster closes: after a signal, closing may outlast the grace
        atomic_write_bytes(os.path.join(outdir, f"{name}_refined.csv"), summary_csv(shots))
        if engine is not None:
            engine.close()
    return 1 if failed else 0


def _refine_all(engine, todo, manifest, echo) -> int:
    from distributed import as_completed

    failed = 0
    futures = {engine.client.submit(refine_task, shot, engine.threads, pure=False, retries=1,
                                    key=f"nbnumba-refine-{shot.key}-{shot.digest[:12]}"): shot for shot in todo}
    try:
        with interrupt.grace(GRACE_S):
            pending = as_completed(list(futures))
            while not pending.is_empty():
                if interrupt.requested():
                    break
                if not pending.has_ready():
                    time.sleep(0.02)
                    continue
                for future in pending.next_batch(block=False):
                    shot = futures[future]
                    try:
                        outcome = future.result()
                    except Exception as err:  # noqa: BLE001 - reported per shot
                        outcome = {"ok": False, "error": f"{type(err).__name__}: {err}"}
                    if outcome.get("ok"):
                        manifest.record(shot, outcome)
                    else:
                        failed += 1
                        manifest.record_failure(shot.key, shot.label, outcome["error"], shot.digest)
                    echo(row_line(shot.key, outcome))
                    manifest.flush(force=False)
    finally:
        manifest.flush()
    return failed
