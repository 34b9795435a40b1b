"""The client side: skip what the manifest says is done, hand the rest to the cluster, record each
frame as it completes, show progress, and end with a summary.

Exit status: 0 when every frame is done (or -max_frames stopped early on purpose), 1 when any
frame failed, 2 for a mistake found before rendering (bad flags, unreadable job file), 130 when
interrupted (SIGINT, Ctrl-C) and 143 when terminated (SIGTERM).  An interruption stops every
worker's writing at once (jobs.stop_run), records in the manifest exactly the frames whose files
were all written (those whose results had not yet arrived too), prints the summary and leaves;
the embedded cluster's processes are stopped on the way out (nbnumba.runtime.interrupt).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass, field

from ..errors import RuntimeFailure, UserError
from ..runtime import interrupt
from .frames import Job
from .manifest import Manifest
from .sink import open_sink

SCALE_HEADROOM = 2.0  # a sweep's int scale puts frame 1's brightest pixel at 55000 / SCALE_HEADROOM
RETRIES = 2  # extra attempts for a frame whose task raised (a worker that died is rescheduled by Dask)
HOOKS_ENV = "NBNUMBA_BATCH_HOOKS"  # tests only: JSON of fault-injection hooks (see jobs.py)
POLL_S = 0.02  # the client's wait between looks at the frames and at a signal
GRACE_S = 3.0  # after a signal: time to stop the workers and save the manifest before being cut off


# what a result raises when the scheduler is gone (the engine never cancels a frame it still waits for)
CANCELLED = ("CancelledError", "FutureCancelledError", "CommClosedError")


class SchedulerLost(Exception):
    """The client lost its scheduler: every frame not yet reported is lost with it."""


@dataclass
class EngineOptions:
    workers: int | None = None
    scheduler: str | None = None
    progress: bool = True
    max_frames: int | None = None
    hooks: dict = field(default_factory=dict)


def hooks_from_env() -> dict:
    text = os.environ.get(HOOKS_ENV)
    if not text:
        return {}
    try:
        hooks = json.loads(text)
    except ValueError:
        raise UserError(f"{HOOKS_ENV} is not JSON") from None
    return hooks if isinstance(hooks, dict) else {}


class Progress:
    """`[#####     ] 5/8 frames  2.31 frames/s  1 failed` on stderr, redrawn in place on a
    terminal; elsewhere (a log file) one line per tenth of the work."""

    def __init__(self, enabled: bool, total: int, stream=None):
        self.stream = stream or sys.stderr
        self.enabled, self.total = enabled and total > 0, total
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.start = time.perf_counter()
        self.shown_tenth = -1
        self.drawn = False

    def update(self, done: int, failed: int) -> None:
        if not self.enabled:
            return
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        width = 24
        fill = int(width * done / self.total)
        text = (f"[{'#' * fill}{' ' * (width - fill)}] {done}/{self.total} frames  "
                f"{done / elapsed:.2f} frames/s" + (f"  {failed} failed" if failed else ""))
        if self.tty:
            self.width = max(getattr(self, "width", 0), len(text))
            print("\r" + text.ljust(self.width), end="", file=self.stream, flush=True)
            self.drawn = True
            interrupt.line_open(True)
        else:
            tenth = 10 * done // self.total
            if tenth != self.shown_tenth:
                self.shown_tenth = tenth
                print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self.enabled and self.tty and self.drawn:
            print(file=self.stream, flush=True)
            self.drawn = False
            interrupt.line_open(False)


def _describe(err: BaseException) -> str:
    name = type(err).__name__
    if name == "KilledWorker":
        return "its worker died on every attempt (KilledWorker): out of memory or a crash"
    if isinstance(err, UserError):
        return str(err)
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"internal error: {name}: {text}" if text else f"internal error: {name}"


def run_job(job: Job, opts: EngineOptions, say=print, warn=None) -> int:
    """Render the job's frames that are not done; return the exit status (0 or 1).  A signal
    (nbnumba.interrupt) or a KeyboardInterrupt once frames are rendering stops the workers,
    saves the manifest and propagates; before (the cluster starting), with nothing to save,
    the process is cut off at once."""
    with contextlib.ExitStack() as rendering:
        return _run_job(job, opts, say, warn, rendering)


def _run_job(job: Job, opts: EngineOptions, say, warn, rendering: contextlib.ExitStack) -> int:
    from .cluster import start
    from .jobs import render_frame

    warn = warn or (lambda line: print(line, file=sys.stderr, flush=True))
    t0 = time.perf_counter()
    manifest = Manifest(job.manifest, job.command).open()
    engine = None
    sink = None
    rendered: list[str] = []
    failed: list[tuple[str, str, str]] = []  # key, label, message
    skipped = []
    interrupted = lost = False
    stopped = None
    render_seconds = 0.0
    try:
        for key, label, message in job.errors:
            failed.append((key, label, message))
            manifest.record_failure(key, label, message)
            warn(f"nbnumba: {label}: {message}")
        # a sweep's frames differ only in angles and seeds: its first tells the device of all
        looked_at = job.frames[:1] if job.command == "sweep" else job.frames
        want_gpu = any(_device(f) in ("cuda", "auto") for f in looked_at)
        fake_gpus = int(opts.hooks.get("fake_gpus", 0))
        if job.rescale is not None:
            scales = manifest.data.get("int_scale", {})
            scale = scales.get(job.scale_probe.job)
            if scale is None:
                engine = start(opts.scheduler, opts.workers, want_gpu, len(job.frames), fake_gpus)
                scale = _choose_scale(engine, job.scale_probe, say)
                manifest.set_value("int_scale", job.scale_probe.job, scale)
            job = job.rescale(scale)
            say(f"{job.command}: int scale {scale:.6g} for every frame (-scale to choose another)")
        sink = open_sink(job)
        if sink is not None and sink.note():
            say(f"{job.command}: {sink.note()}")
        skipped, todo = _plan(job, manifest, sink, opts.max_frames)
        stale = sum(1 for f in todo if manifest.data["frames"].get(f.key, {}).get("hash") not in (None, f.digest))
        if todo:
            if engine is None:
                engine = start(opts.scheduler, opts.workers, want_gpu, len(todo), fake_gpus)
            say(f"{job.command}: {len(todo)} to render, {len(skipped)} already done, "
                f"{len(job.errors)} refused; {engine.description}")
            if stale:
                say(f"{job.command}: {stale} of them were rendered before with other flags or inputs: "
                    f"those old frames are stale and are replaced")
            worker_hooks = {k: v for k, v in opts.hooks.items() if k in ("kill_marker", "kill_key",
                                                                          "render_log", "delay")}
            rendering.enter_context(interrupt.grace(GRACE_S))
            interrupt.check()
            rendered, ending, render_seconds = _render(engine, todo, opts, worker_hooks, manifest, failed,
                                                       render_frame, sink)
            interrupted, lost = ending == "interrupted", ending == "lost"
            stopped = ending if isinstance(ending, RuntimeFailure) else None
        manifest.flush()
    except KeyboardInterrupt:
        interrupted = True
    finally:
        try:
            manifest.flush()
        finally:
            if sink is not None:
                sink.close()
            manifest.close()
            # after a signal the way out stops the embedded cluster's processes at once
            if engine is not None and not interrupt.requested():
                engine.close()
    seconds = time.perf_counter() - t0
    rate = (f" ({len(rendered) / seconds:.2f} frames/s; {len(rendered) / render_seconds:.2f} after "
            f"the cluster started)" if rendered and render_seconds > 0 else "")
    not_done = len(job.frames) - len(skipped) - len(rendered) - (len(failed) - len(job.errors))
    say(f"{job.command} summary: {len(rendered)} rendered, {len(skipped)} skipped (already done), "
        f"{len(failed)} failed" + (f", {not_done} not done" if not_done else "")
        + f" in {seconds:.1f} s{rate}; manifest {job.manifest}")
    for key, label, message in failed:
        warn(f"nbnumba: failed: {label}: {message}")
    if interrupted:
        interrupt.check()
        raise KeyboardInterrupt
    if stopped is not None:
        raise stopped
    if lost:
        raise RuntimeFailure(f"lost the Dask scheduler ({opts.scheduler or 'embedded'}): run the same command "
                             f"again to render the {not_done} frames not done")
    if not_done and opts.max_frames is not None:
        say(f"{not_done} frames left (-max_frames {opts.max_frames}): run the same command again to continue")
    if failed:
        raise RuntimeFailure(f"{len(failed)} of {job.total} {'frames' if job.command == 'sweep' else 'rows'} failed")
    return 0


def _plan(job: Job, manifest: Manifest, sink, max_frames: int | None) -> tuple[list, list]:
    """(frames done already, frames to render), looking at frames in order only until
    `max_frames` are found to render."""
    skipped, todo = [], []
    for frame in job.frames:
        if max_frames is not None and len(todo) >= max_frames:
            break
        if manifest.is_done(frame) and (sink is None or sink.has(frame)):
            skipped.append(frame)
        else:
            todo.append(frame)
    return skipped, todo


def _device(frame) -> str:
    argv = list(frame.argv)
    device = "cpu"
    for i, arg in enumerate(argv[:-1]):
        if arg == "-device":
            device = argv[i + 1]
    return device


def _choose_scale(engine, probe, say) -> float:
    """One int scale for a whole sweep, from frame 1's brightest pixel (the probe renders it
    without writing), so that frames are comparable: 55000 / (SCALE_HEADROOM * max_I)."""
    from .jobs import render_frame
    say(f"choosing the int scale from {probe.label}")
    result = engine.client.submit(render_frame, probe, engine.threads, {}, pure=False).result()
    if not result.get("ok"):
        raise UserError(result.get("error") or "the scale probe failed")
    max_I = result.get("max_I") or 0.0
    return 55000.0 / (SCALE_HEADROOM * max_I) if max_I > 0.0 else 1.0


def _render(engine, todo, opts, worker_hooks, manifest, failed, render_frame, sink=None):
    from distributed import as_completed

    client = engine.client
    t0 = time.perf_counter()
    started = time.time() - 1.0  # file times may lag the clock a little
    run = uuid.uuid4().hex
    by_key = {}
    futures = []
    for frame in todo:
        future = client.submit(render_frame, frame, engine.threads, worker_hooks, run, retries=RETRIES,
                               pure=False, key=f"nbnumba-{frame.job}-{frame.key}-{frame.digest[:12]}")
        by_key[future.key] = frame
        futures.append(future)
    rendered: list[str] = []
    meter = Progress(opts.progress, len(todo))
    interrupt_after = opts.hooks.get("interrupt_after")
    done = 0
    pending = as_completed(futures)
    try:
        while not pending.is_empty():
            interrupt.check()
            if client.status not in ("running", "newly-created"):
                raise SchedulerLost
            if not pending.has_ready():
                time.sleep(POLL_S)
                continue
            for future in pending.next_batch(block=False):
                frame = by_key[future.key]
                try:
                    result = future.result()
                except Exception as err:  # noqa: BLE001 - reported per frame
                    if type(err).__name__ in CANCELLED:
                        raise SchedulerLost from None
                    result = {"ok": False, "error": _describe(err)}
                if result.get("ok"):
                    if sink is not None:
                        sink.write(frame, result)
                    manifest.record(frame, result, result.get("worker"))
                    rendered.append(frame.key)
                else:
                    failed.append((frame.key, frame.label, result["error"]))
                    manifest.record_failure(frame.key, frame.label, result["error"], frame.digest)
                    meter.close()
                    print(f"nbnumba: {frame.label}: {result['error']}", file=sys.stderr, flush=True)
                future.release()
                done += 1
                manifest.flush(force=False)
                meter.update(done, len(failed))
                if interrupt_after is not None and done >= int(interrupt_after):
                    raise KeyboardInterrupt
    except KeyboardInterrupt:
        meter.close()
        _stop(engine, run, futures, {f.key: f for f in todo}, manifest, rendered, failed)
        return rendered, "interrupted", time.perf_counter() - t0
    except RuntimeFailure as err:  # the job's one file cannot be written (a full disk): said after the summary
        meter.close()
        with contextlib.suppress(Exception):
            client.cancel([f for f in futures if not f.done()])
        return rendered, err, time.perf_counter() - t0
    except SchedulerLost:
        meter.close()
        _record_written(todo, manifest, rendered, failed, started)
        return rendered, "lost", time.perf_counter() - t0
    meter.close()
    with contextlib.suppress(Exception):
        from .jobs import forget_run
        client.run(forget_run, run)
    return rendered, "done", time.perf_counter() - t0


def _record_written(todo, manifest, rendered, failed, since: float) -> None:
    """With the scheduler gone, the workers cannot be asked which frames they wrote: a frame
    whose files all exist and were written since the frames were handed out is complete (every
    file of a frame is renamed into place only once all are written, io.atomic.together)."""
    settled = set(rendered) | {key for key, _, _ in failed}
    for frame in todo:
        if frame.key in settled or frame.sink or not frame.files:
            continue
        try:
            written = min(os.stat(path).st_mtime for path in frame.files)
        except OSError:
            continue
        if written >= since:
            manifest.record(frame, {})
            rendered.append(frame.key)


def _stop(engine, run, futures, frames, manifest, rendered, failed) -> None:
    """Stop the run's writing on every worker and record the frames that were written but whose
    results had not arrived: the manifest then holds exactly the frames complete on disk."""
    from .jobs import stop_run

    client = engine.client
    # the embedded cluster's nannies must not start new workers when theirs are stopped
    for nanny in getattr(engine.cluster, "workers", {}).values():
        with contextlib.suppress(Exception):
            nanny.close_gracefully()
    try:
        written = client.run(stop_run, run)
    except Exception:  # noqa: BLE001 - workers unreachable: what arrived is what is known
        written = {}
    settled = set(rendered) | {key for key, _, _ in failed}
    for results in written.values():
        for key, result in results.items():
            if key in frames and key not in settled:
                manifest.record(frames[key], result, result.get("worker"))
                rendered.append(key)
                settled.add(key)
    with contextlib.suppress(Exception):
        client.cancel([f for f in futures if not f.done()])
