"""The worker side: render one frame from its description and write its files.

A worker is a long-lived process that renders many frames, so what can be kept is kept: the
compiled kernels (Numba compiles or loads them once per process), the structure factor tables
(`-hkl` files are parsed once per worker, keyed by path, size and modification time) and a little
state per job (frames rendered, time spent), keyed by the hash of the job's base argv.

`render_frame` returns a result dict for a frame that rendered or failed for a user's mistake (a
bad flag, a missing file: one line, no retry); anything else raises, so that Dask retries it.
"""

from __future__ import annotations

import functools
import os
import signal
import socket
import threading
import time

from ..errors import UserError

_lock = threading.Lock()
# Numba's default (workqueue) threading layer aborts the process when two threads launch parallel
# kernels at once; a worker with several threads (a cluster not started by nbnumba) must not.
_render_lock = threading.Lock()
_jobs: dict = {}  # job key -> {"frames": n, "seconds": s, "first": seconds of the first frame}
_installed = False
# An interrupted client stops its run on every worker (stop_run): from then on no frame of that
# run writes a file, and the client learns every frame whose files were all written, so that its
# manifest records exactly those.  A frame's files are written, and the frame counted, under
# _write_lock, which stop_run takes too.
_write_lock = threading.Lock()
_finished: dict = {}  # run id -> {frame key: result} of the frames written here
_stopped: set = set()  # run ids whose frames must not write any more


@functools.lru_cache(maxsize=16)
def _cached_hkl(path: str, size: int, mtime_ns: int, default_F: float):
    from ..model.table_cache import read_hkl
    return read_hkl(path, default_F)


def read_hkl_cached(path, default_F: float):
    """`model.table_cache.read_hkl` with a per-process cache keyed by (path, size, mtime, default_F);
    the table is shared read-only between the frames of this process."""
    from ..model.table_cache import read_hkl
    try:
        st = os.stat(path)
    except OSError:
        return read_hkl(path, default_F)  # its own one-line error
    return _cached_hkl(os.path.abspath(path), st.st_size, st.st_mtime_ns, float(default_F))


def install_hkl_cache() -> None:
    """Make `simulation.build` read -hkl files through the cache in this process."""
    global _installed
    if _installed:
        return
    from ..model import simulation
    simulation.read_hkl = read_hkl_cached
    _installed = True


def dask_setup(worker) -> None:
    """Dask preload of the embedded cluster's workers: Ctrl-C in the terminal reaches every
    process of the foreground group, and only the client should act on it (it closes the
    cluster); the workers ignore SIGINT instead of printing tracebacks."""
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        # the interrupted client stops its workers with SIGTERM: leave no temporary file behind
        signal.signal(signal.SIGTERM, _leave)
    except ValueError:  # not the main thread: nothing to do
        pass
    install_hkl_cache()


def _leave(signum, frame) -> None:
    from ..io import atomic
    atomic.abandon()
    os._exit(128 + signum)


def stop_run(run: str, dask_worker=None) -> dict:
    """On every worker, through `client.run`: no frame of `run` writes a file here any more;
    returns {frame key: result} of the frames of `run` that this worker wrote (and forgets them)."""
    with _write_lock:
        _stopped.add(run)
        return _finished.pop(run, {})


def forget_run(run: str, dask_worker=None) -> None:
    """The client has every result of `run`: drop what this worker kept of it."""
    with _write_lock:
        _finished.pop(run, None)


def _hook_kill(frame, hooks: dict) -> None:
    """Test hook: the first time frame `kill_key` starts, SIGKILL this worker process."""
    marker = hooks.get("kill_marker")
    if marker and frame.key == str(hooks.get("kill_key")):
        try:
            fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return
        os.write(fd, f"{os.getpid()}\n".encode())
        os.close(fd)
        os.kill(os.getpid(), signal.SIGKILL)


def _hook_log(frame, hooks: dict) -> None:
    """Test hook: append 'key pid' to a log for every frame written (a render counter)."""
    log = hooks.get("render_log")
    if log:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, f"{frame.key} {os.getpid()}\n".encode())
        finally:
            os.close(fd)


def render_frame(frame, threads: int = 0, hooks: dict | None = None, run: str = "") -> dict:
    """Build, render and write one frame (the work of `nbnumba run` without its printing, and
    without writing Fdump.bin).  `threads`: Numba threads when the argv gives no -nthreads;
    `run`: the client's run id (see stop_run)."""
    import numba

    from ..amorphous.chain import add_background
    from ..kernels.backends import backend_for
    from ..kernels.render import render
    from ..model.simulation import build
    from ..outputs.images import statistics, write_outputs
    from ..runtime.threads import set_threads

    hooks = hooks or {}
    if run in _stopped:
        return {"key": frame.key, "ok": False, "error": "stopped: the command was interrupted"}
    _hook_kill(frame, hooks)
    if hooks.get("delay"):
        time.sleep(float(hooks["delay"]))
    t0 = time.perf_counter()
    result = {"key": frame.key, "digest": frame.digest, "pid": os.getpid(), "host": socket.gethostname(),
              "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}
    try:
        install_hkl_cache()
        sim = build(list(frame.argv), fdump_path=frame.fdump, say=None)  # the client warned once already
        backend = backend_for(sim.params)
        with _render_lock:  # one render at a time per process, however many threads the worker has
            set_threads(sim.params.nthreads or min(threads, numba.config.NUMBA_NUM_THREADS))
            done = render(sim, backend, sim.params.precision)
            image = add_background(sim, done.image)
        stats = statistics(sim, image)
        with _write_lock:
            if run in _stopped:
                return {"key": frame.key, "ok": False, "error": "stopped: the command was interrupted"}
            if frame.sink:
                result.update(_pixels(frame, sim, image, stats))
            else:
                write_outputs(sim, image, stats, lambda line: None)
            seconds = time.perf_counter() - t0
            result.update(ok=True, error=None, seconds=seconds, device=backend.__name__.rsplit(".", 1)[-1],
                          max_I=stats.max_I, mean=stats.mean, worker=_worker_address())
            if run and not frame.sink:  # a sink's frames are written by the command, not here
                _finished.setdefault(run, {})[frame.key] = result
    except UserError as err:
        result.update(ok=False, error=str(err), seconds=time.perf_counter() - t0)
        return result
    with _lock:
        state = _jobs.setdefault(frame.job, {"frames": 0, "seconds": 0.0, "first": seconds})
        state["frames"] += 1
        state["seconds"] += seconds
        result["worker_frames"] = state["frames"]
    _hook_log(frame, hooks)
    return result


def _pixels(frame, sim, image, stats) -> dict:
    """What a frame of a one-file job sends back instead of writing: the image the file keeps
    (int, noise or float), the float image when kept too, and the derived labels of a batch.
    With the detector-response flags the int and noise images are those the frame's SMV files
    would hold (outputs.detector_response, the same call); the float image stays the photons."""
    import numpy as np

    from ..outputs.images import detector_response, int_image
    from ..response import rng
    from .sink import derived_labels, row_geometry
    if frame.data == "float":
        data = np.asarray(image, dtype=np.float32)
    elif sim.params.response:
        r = detector_response(sim, image)[1]
        data = r.noise_image if frame.data == "noise" else r.int_image
        if data is None:  # frames.py gives every frame that keeps noise images a -noisefile
            raise RuntimeError(f"{frame.label}: no noise image: its argv has -nonoise")
    elif frame.data == "noise":
        roi = np.array(sim.detector.roi, dtype=np.int64)
        data = rng.noise_image(image, roi, sim.params.adc_offset, sim.seed)[0]
    else:
        data = int_image(sim, image, stats.max_I)[0]
    from ..io.nexus import encode_chunk
    out = {"derived": derived_labels(sim), "geometry": row_geometry(sim)}
    images = [("data", "chunk", data)]
    if frame.floats:
        images.append(("floats", "float_chunk", np.asarray(image, dtype=np.float32)))
    for name, encoded, pixels in images:
        chunk = encode_chunk(pixels, frame.compression)
        out[encoded if chunk is not None else name] = chunk if chunk is not None else pixels
    return out


def _worker_address() -> str | None:
    try:
        from distributed import get_worker
        return get_worker().address
    except Exception:  # noqa: BLE001 - not in a Dask worker
        return None


def worker_state() -> dict:
    """This process's per-job counters (for diagnostics: `client.run(worker_state)`)."""
    with _lock:
        return {key: dict(value) for key, value in _jobs.items()}
