"""Where frames render: an embedded Dask cluster on this machine, or an existing one.

Embedded: one worker process per GPU (pinned with CUDA_VISIBLE_DEVICES) when the frames ask for
`-device cuda` or `-device auto` and `nbnumba.kernels.cuda.available()` says a GPU works; else N
CPU worker processes (`--workers N`, default min(cores, 8)), each running one frame at a time with
cores // N Numba threads.  `--scheduler ADDRESS` connects to a running scheduler instead (see
docs/batch.md for dask-jobqueue and dask-mpi).
"""

from __future__ import annotations

import contextlib
import ctypes.util
import logging
import os
import re
import subprocess
import sys
from dataclasses import dataclass

PROBE = ("from nbnumba.kernels import cuda\n"
         "ok = cuda.available()\n"
         "n = 0\n"
         "if ok:\n"
         "    from numba import cuda as c\n"
         "    n = len(c.gpus)\n"
         "print(n)\n")


# No dashboard; the scheduler's small HTTP server (health, metrics) on any free port, not 8787.
QUIET_SCHEDULER = {"dashboard": False, "dashboard_address": ":0"}
PRELOAD = "nbnumba.batch.jobs"  # its dask_setup makes embedded workers ignore Ctrl-C (the client handles it)


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _driver_present() -> bool:
    if os.environ.get("NUMBA_ENABLE_CUDASIM", "0") not in ("", "0"):
        return True
    return os.path.exists("/proc/driver/nvidia") or ctypes.util.find_library("cuda") is not None


def gpu_ids() -> list[str]:
    """The GPUs a worker can be pinned to (as CUDA_VISIBLE_DEVICES values); [] when none works.

    `nbnumba.kernels.cuda.available()` runs a test kernel, which would leave a CUDA context in this
    process: it is asked in a short subprocess.  Any failure (no driver, module missing or broken)
    means no GPU."""
    if not _driver_present():
        return []
    try:
        done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300)
        count = int(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else 0
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return []
    if count <= 0:
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible:
        names = [v.strip() for v in visible.split(",") if v.strip()]
        return names[:count]
    return [str(i) for i in range(count)]


# s to reach a running scheduler: a refused connection is retried until then
CONNECT_S = 5
ADDRESS = re.compile(r"^((tcp|tls|ucx|ws|wss)://)?(\[[0-9a-fA-F:.]+\]|[^\s:/\[\]]+):(\d{1,5})$")


def check_address(address: str) -> None:
    """--scheduler takes a scheduler's address, PROTOCOL://HOST:PORT (tcp:// when left out)."""
    m = ADDRESS.match(address)
    if m is None or not 0 < int(m.group(4)) < 65536:
        from ..errors import UserError
        raise UserError(f"--scheduler expects a Dask scheduler's address, such as tcp://HOST:8786, got {address!r}")


@dataclass
class Engine:
    client: object
    cluster: object | None  # None when connected to a scheduler started elsewhere
    threads: int  # Numba threads per frame (0: leave to the worker's default)
    description: str

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close(timeout=10)
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                self.cluster.close(timeout=20)


def start(scheduler: str | None, workers: int | None, want_gpu: bool, frames: int,
          fake_gpus: int = 0) -> Engine:
    """A client on an existing scheduler, or on an embedded cluster sized for `frames` frames."""
    from distributed import Client

    # the client's own log (a lost scheduler, its reconnection attempts) would print tracebacks:
    # the engine reports what happened in one line
    for name in ["distributed", *logging.root.manager.loggerDict]:
        if name.split(".")[0] == "distributed":
            logging.getLogger(name).setLevel(logging.CRITICAL)
    if scheduler:
        try:
            client = Client(scheduler, timeout=f"{CONNECT_S}s")
        except (OSError, TimeoutError) as err:
            from ..errors import RuntimeFailure
            raise RuntimeFailure(f"cannot reach the Dask scheduler at {scheduler}: {err}") from None
        n = len(client.scheduler_info().get("workers", {}))
        return Engine(client, None, 0, f"scheduler {scheduler} ({n} workers)")

    from .quiet import spawn_quietly

    spawn_quietly()
    return _embedded(workers, want_gpu, frames, fake_gpus)


def _embedded(workers: int | None, want_gpu: bool, frames: int, fake_gpus: int) -> Engine:
    from distributed import Client

    total = cores()
    gpus = [str(i) for i in range(fake_gpus)] if fake_gpus else (gpu_ids() if want_gpu else [])
    if gpus:
        if workers:
            gpus = gpus[:workers]
        gpus = gpus[:max(1, frames)]
        threads = max(1, total // len(gpus))
        cluster = _gpu_cluster(gpus, threads)
        what = (f"{len(gpus)} GPU worker{'s' * (len(gpus) > 1)} (CUDA_VISIBLE_DEVICES {','.join(gpus)}), "
                f"{threads} CPU thread{'s' * (threads > 1)} each")
    else:
        n = workers or min(total, 8)
        n = max(1, min(n, frames))
        threads = max(1, total // n)
        cluster = _cpu_cluster(n, threads)
        what = f"{n} CPU worker{'s' * (n > 1)} x {threads} thread{'s' * (threads > 1)}"
    try:
        client = Client(cluster)
    except BaseException:
        cluster.close()
        raise
    return Engine(client, cluster, threads, what)


def _worker_env(threads: int, extra: dict | None = None) -> dict:
    # One frame at a time per worker; its Numba kernels get the worker's share of the cores.
    env = {"NUMBA_NUM_THREADS": str(threads), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1"}
    env.update(extra or {})
    return env


def _cpu_cluster(n: int, threads: int):
    from distributed import LocalCluster
    return LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None,
                        silence_logs=logging.ERROR, env=_worker_env(threads), preload=[PRELOAD],
                        scheduler_kwargs=QUIET_SCHEDULER)


def _gpu_cluster(gpus: list[str], threads: int):
    from distributed import Nanny, Scheduler, SpecCluster
    scheduler = {"cls": Scheduler, "options": {"host": "127.0.0.1", "port": 0, **QUIET_SCHEDULER}}
    workers = {f"gpu-{g}": {"cls": Nanny,
                            "options": {"nthreads": 1, "silence_logs": logging.ERROR, "preload": [PRELOAD],
                                        "env": _worker_env(threads, {"CUDA_VISIBLE_DEVICES": g})}}
               for g in gpus}
    return SpecCluster(workers=workers, scheduler=scheduler, silence_logs=logging.ERROR)
