"""Interrupting `nbnumba run` mid-render: SIGINT exits 130, SIGTERM 143, each with one line on
stderr, and neither leaves an output file, a temporary file, or a changed earlier output behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# A 1024x1024 render of about 15 s on 2 threads (8x8 sub-pixels, 16 phi steps); it is stopped long before.
THREADS = min(2, os.cpu_count() or 1)
ARGS = ("-cell 100 100 100 90 90 90 -default_F 100 -lambda 1 -N 5 -distance 100 -detpixels 1024 -pixel 0.1 "
        f"-oversample 8 -phisteps 16 -osc 1 -nthreads {THREADS} -nonoise -nopgm "
        "-floatfile out.bin -intfile out.img").split()
STARTUP_S = 180  # a cold Numba cache compiles the kernel first

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


class Run:
    """`nbnumba run` in a subprocess, with its stdout and stderr collected as they arrive."""

    def __init__(self, cwd: Path, args: list[str]):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
        # -W ignore: Numba's own warnings (e.g. about its cache) are not the CLI's output
        self.proc = subprocess.Popen([sys.executable, "-W", "ignore", "-m", "nbnumba", "run", *args], cwd=cwd,
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out, self.err = bytearray(), bytearray()
        self.threads = [threading.Thread(target=self._pump, args=(self.proc.stdout, self.out), daemon=True),
                        threading.Thread(target=self._pump, args=(self.proc.stderr, self.err), daemon=True)]
        for thread in self.threads:
            thread.start()

    @staticmethod
    def _pump(stream, buffer: bytearray) -> None:
        while chunk := stream.read1(4096):
            buffer.extend(chunk)

    def wait_for(self, buffer: bytearray, text: bytes, timeout: float) -> None:
        end = time.monotonic() + timeout
        while text not in buffer:
            if self.proc.poll() is not None:
                pytest.fail(f"nbnumba ended (exit {self.proc.returncode}) before printing {text!r}: "
                            f"{bytes(self.err)[-2000:]!r}")
            if time.monotonic() > end:
                self.proc.kill()
                pytest.fail(f"no {text!r} after {timeout} s")
            time.sleep(0.02)

    def finish(self, timeout: float = 60) -> int:
        code = self.proc.wait(timeout=timeout)
        for thread in self.threads:
            thread.join(timeout=10)
        return code


def _interrupt(tmp_path: Path, signum: int, progress: bool) -> tuple[int, str, float]:
    run = Run(tmp_path, ARGS if progress else [*ARGS, "-noprogress"])
    if progress:
        # the meter appears once the render has run for a second
        run.wait_for(run.err, b"% done", STARTUP_S)
        time.sleep(0.5)
    else:
        # the set-up report is printed just before rendering starts
        run.wait_for(run.out, b"hdivrange", STARTUP_S)
        time.sleep(1.5)
    assert run.proc.poll() is None, "the render finished before the signal: make it longer"
    sent = time.monotonic()
    run.proc.send_signal(signum)
    code = run.finish()
    return code, run.err.decode(errors="replace"), time.monotonic() - sent


def _assert_clean(tmp_path: Path, before: dict[str, bytes]) -> None:
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    assert sorted(after) == sorted(before), f"files left behind: {sorted(set(after) - set(before))}"
    assert after == before, "an existing file was changed"


@pytest.mark.parametrize("signum, code, message", [(signal.SIGINT, 130, "nbnumba: interrupted"),
                                                   (signal.SIGTERM, 143, "nbnumba: terminated")],
                         ids=["SIGINT", "SIGTERM"])
def test_signal_mid_render(tmp_path, signum, code, message):
    exit_code, stderr, latency = _interrupt(tmp_path, signum, progress=False)
    assert exit_code == code, stderr
    assert stderr.splitlines() == [message], stderr
    assert "Traceback" not in stderr
    assert latency < 30, f"took {latency:.1f} s to stop"
    _assert_clean(tmp_path, {})


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_signal_leaves_existing_outputs_untouched(tmp_path, signum, code):
    """Earlier outputs of the same names survive byte for byte; the progress meter was on."""
    before = {"out.bin": b"an earlier float image \x00\x01\x02\xff" * 11, "out.img": b"{\nHEADER_BYTES=512;\n}" * 5}
    for name, data in before.items():
        (tmp_path / name).write_bytes(data)
    exit_code, stderr, _ = _interrupt(tmp_path, signum, progress=True)
    assert exit_code == code, stderr
    assert "Traceback" not in stderr
    # the meter's \r-separated updates share stderr; the message is the one line after them
    messages = [part for part in stderr.replace("\r", "\n").splitlines() if "nbnumba" in part]
    assert len(messages) == 1 and messages[0].endswith("nbnumba: " + ("interrupted" if code == 130 else
                                                                      "terminated")), stderr
    _assert_clean(tmp_path, before)
