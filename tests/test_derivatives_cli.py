"""`nbnumba derivatives`: the files it writes hold api.jacobian's images; mistakes are one line, exit 2."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from nbnumba import api
from nbnumba.cli import main

ARGS = "-cell 70 80 90 85 95 100 -default_F 100 -N 5 -lambda 1 -distance 60 -detpixels 16 -pixel 0.5 -gauss_xtal"


def _run(args, folder):
    """The command run in a new empty folder below `folder`: its result and the files it wrote there."""
    out = Path(tempfile.mkdtemp(dir=folder))
    before = os.getcwd()
    os.chdir(out)
    try:
        result = CliRunner().invoke(main, ["derivatives", *args.split()])
    finally:
        os.chdir(before)
    return result, {path.name: path.read_bytes() for path in out.iterdir()}


def test_writes_the_value_and_derivative_images(tmp_path):
    result, files = _run(ARGS + " -wrt rotx,Na,distance -out d", tmp_path)
    assert result.exit_code == 0, result.output
    sim = api.simulation(ARGS.split())
    expected = api.jacobian(sim, ["rotx", "Na", "distance"])
    assert np.array_equal(np.frombuffer(files["d.value.bin"], "<f4").reshape(sim.shape),
                          expected.image.astype(np.float32))
    for name in ("rotx", "Na", "distance"):
        assert np.array_equal(np.frombuffer(files[f"d.d_{name}.bin"], "<f4").reshape(sim.shape),
                              expected.derivatives[name].astype(np.float32))
    assert files["d.montage.png"][:8] == b"\x89PNG\r\n\x1a\n"


def test_mistakes_are_one_line_and_exit_2(tmp_path):
    np.ones((3, 3), "<f4").tofile(tmp_path / "w.bin")
    for args, words in [(ARGS + " -wrt rotx,Nq -out d", "unknown parameter 'Nq'"),
                        (ARGS.replace(" -gauss_xtal", "") + " -wrt Na -out d", "Na with the square crystal shape"),
                        (ARGS + f" -wrt rotx -out d -weights {tmp_path / 'w.bin'}", "16x16 float image"),
                        (ARGS + " -wrt rotx", "needs -out")]:
        result, files = _run(args, tmp_path)
        assert result.exit_code == 2, (args, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and words in lines[0], (args, result.output)
        assert not files
