"""DIALS reads nbnumba's NXmx sweeps as a processing program would: `dials.import` gives the same
experiment as the SMV sweep, and `dials.find_spots` + `dials.index` with the file's geometry held
fixed recover the cell, on a plain detector and on one at two-theta 20 with a few degrees of
detector rotation.  Needs DIALS (Debian: `apt-get install -y dials`, which runs under
/usr/bin/python3); select these tests with `-m dials`."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from nbnumba.cli import main

pytestmark = [pytest.mark.dials,
              pytest.mark.skipif(shutil.which("dials.import") is None,
                                 reason="DIALS is not installed (dials.import not on PATH): apt-get install -y dials")]

CELL = (40.0, 50.0, 60.0, 90.0, 90.0, 90.0)
# Gaussian spots (no fringes counted as spots) spanning a few 0.2 mm pixels, 1 degree per frame
SWEEP = ["-default_F", "100", "-cell", *map(str, CELL), "-misset", "10", "20", "30", "-lambda", "1",
         "-distance", "60", "-detpixels", "192", "-pixel", "0.2", "-N", "10", "-gauss_xtal", "-oversample", "3",
         "-osc", "1", "-phisteps", "4", "-seed", "5", "-nframes", "20", "-noise", "-noprogress"]
TILTED = ["-twotheta", "20", "-detector_rotx", "2", "-detector_roty", "-3", "-detector_rotz", "4"]

# runs under DIALS's own Python: the models of an experiment list, and indexing statistics
REPORT = r"""
import json, sys
from dxtbx.model.experiment_list import ExperimentList
from dials.array_family import flex
el = ExperimentList.from_file(sys.argv[1], check_format=False)
e = el[0]
panel, beam = e.detector[0], e.beam
out = {"n_imagesets": len(el.imagesets()), "beam_centre_px": list(panel.get_beam_centre_px(beam.get_s0())),
       "distance": panel.get_directed_distance(), "wavelength": beam.get_wavelength(),
       "axis": list(e.goniometer.get_rotation_axis()), "oscillation": list(e.scan.get_oscillation()),
       "images": list(e.scan.get_image_range())}
if e.crystal is not None:
    out["cell"] = list(e.crystal.get_unit_cell().parameters())
    r = flex.reflection_table.from_file(sys.argv[2])
    strong = len(flex.reflection_table.from_file(sys.argv[3]))
    out["indexed_fraction"] = r.get_flags(r.flags.indexed).count(True) / strong
    used = r.select(r.get_flags(r.flags.used_in_refinement))
    xo, yo, _ = used["xyzobs.px.value"].parts()
    xc, yc, _ = used["xyzcal.px"].parts()
    out["rmsd_px"] = [flex.mean(flex.pow2(xc - xo)) ** 0.5, flex.mean(flex.pow2(yc - yo)) ** 0.5]
print(json.dumps(out))
"""


def dials(args, cwd: Path) -> str:
    # DIALS runs on the system Python: keep this interpreter's paths out of its environment
    env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd), "LANG": "C.UTF-8"}
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return done.stdout


def report(cwd: Path, *files) -> dict:
    return json.loads(dials(["/usr/bin/python3", "-c", REPORT, *files], cwd).strip().splitlines()[-1])


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    """The same 20-frame sweep as SMV and as NeXus, and the tilted detector as NeXus."""
    from distributed import LocalCluster
    root = tmp_path_factory.mktemp("dials")
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR, preload=["nbnumba.batch.jobs"],
                      scheduler_kwargs={"dashboard_address": ":0"}) as cluster:
        for name, extra in (("smv", []), ("nxs", ["-format", "nexus"]), ("tilted", ["-format", "nexus", *TILTED])):
            old = os.getcwd()
            os.chdir(root)
            try:
                done = CliRunner().invoke(main, ["sweep", *SWEEP, *extra, "-outdir", name,
                                                 "--scheduler", cluster.scheduler_address], catch_exceptions=False)
            finally:
                os.chdir(old)
            assert done.exit_code == 0, done.output
    return root


def index(root: Path, name: str) -> dict:
    work = root / f"{name}_proc"
    work.mkdir(exist_ok=True)
    dials(["dials.import", f"../{name}/image.nxs"], work)
    dials(["dials.find_spots", "imported.expt", "nproc=1"], work)
    # the geometry is the file's, exactly: indexing refines only the crystal
    dials(["dials.index", "imported.expt", "strong.refl", "detector.fix=all", "beam.fix=all"], work)
    return report(work, "indexed.expt", "indexed.refl", "strong.refl")


def test_dials_imports_the_nexus_sweep_as_the_smv_sweep(sweeps):
    from nbnumba.model.simulation import build
    work = sweeps / "import"
    work.mkdir()
    dials(["dials.import", "../nxs/image.nxs", "output.experiments=nxs.expt"], work)
    dials(["dials.import", "template=../smv/image_noise_#####.img", "output.experiments=smv.expt"], work)
    nxs, smv = report(work, "nxs.expt"), report(work, "smv.expt")
    assert nxs["n_imagesets"] == smv["n_imagesets"] == 1
    assert nxs["images"] == smv["images"] == [1, 20]
    # dxtbx's SMV reader places the beam half a pixel off in each direction; the NeXus file has
    # nbnumba's own beam centre
    assert np.abs(np.subtract(nxs["beam_centre_px"], smv["beam_centre_px"])).max() <= 0.5 + 1e-6
    det = build(SWEEP[:SWEEP.index("-nframes")]).detector
    assert nxs["beam_centre_px"] == pytest.approx([det.Fbeam / det.pixel_size, det.Sbeam / det.pixel_size], abs=1e-6)
    assert nxs["distance"] == pytest.approx(smv["distance"], abs=0.01)
    assert nxs["wavelength"] == pytest.approx(smv["wavelength"], rel=1e-9)
    assert nxs["axis"] == pytest.approx(smv["axis"], abs=1e-9)
    assert nxs["oscillation"] == pytest.approx(smv["oscillation"], abs=1e-9)


@pytest.mark.parametrize("name", ["nxs", "tilted"])
def test_dials_indexes_the_nexus_sweep(sweeps, name):
    got = index(sweeps, name)
    for value, true in zip(got["cell"], CELL):
        assert abs(value - true) <= 0.003 * true, got["cell"]
    assert got["indexed_fraction"] >= 0.95
    assert max(got["rmsd_px"]) < 0.3, got["rmsd_px"]


# the run's beam and detector response, as DIALS reads them back
RESPONSE = ["-default_F", "100", "-cell", *map(str, CELL), "-lambda", "1", "-distance", "60", "-detpixels", "64",
            "-pixel", "0.2", "-N", "5", "-osc", "1", "-nframes", "3", "-noise", "-noprogress", "-seed", "5",
            "-adc", "25", "-exposure", "2.5", "-polar", "0.8", "-fix_smv_keys", "--workers", "1"]
MODELS = r"""
import json, sys
from dxtbx.model.experiment_list import ExperimentList
e = ExperimentList.from_file(sys.argv[1], check_format=False)[0]
panel, beam = e.detector[0], e.beam
print(json.dumps({"pedestal": panel.get_pedestal(), "trusted": list(panel.get_trusted_range()),
                  "exposure": list(e.scan.get_exposure_times()), "fraction": beam.get_polarization_fraction(),
                  "normal": list(beam.get_polarization_normal())}))
"""


@pytest.fixture(scope="module")
def response_sweeps(tmp_path_factory):
    root = tmp_path_factory.mktemp("response")
    old = os.getcwd()
    os.chdir(root)
    try:
        for name, extra in (("smv", []), ("nxs", ["-format", "nexus"])):
            done = CliRunner().invoke(main, ["sweep", *RESPONSE, *extra, "-outdir", name], catch_exceptions=False)
            assert done.exit_code == 0, done.output
    finally:
        os.chdir(old)
    return root


def models(root: Path, source: str, name: str) -> dict:
    dials(["dials.import", source, f"output.experiments={name}.expt"], root)
    return json.loads(dials(["/usr/bin/python3", "-c", MODELS, f"{name}.expt"], root).strip().splitlines()[-1])


def test_dials_reads_the_pedestal_and_trusted_range_of_an_smv_sweep_with_its_keys(response_sweeps):
    got = models(response_sweeps, "template=smv/image_noise_#####.img", "smv")
    assert got["pedestal"] == 25.0  # -adc, from ADC_OFFSET (nanoBragg's header alone: 1)
    assert got["trusted"] == [-1.0, 65535.0 - 25.0]
    # what dxtbx's reader of nanoBragg's images cannot take from any header: it sets 1 s for the
    # first image, and leaves the polarization at its own default
    assert got["exposure"][0] == 1.0
    assert (got["fraction"], got["normal"]) == (0.999, [0.0, 1.0, 0.0])


def test_dials_reads_the_exposure_and_trusted_range_of_a_nexus_sweep(response_sweeps):
    got = models(response_sweeps, "nxs/image.nxs", "nxs")
    assert got["exposure"] == [2.5, 2.5, 2.5]  # -exposure, from frame_time
    assert got["trusted"] == [-1.0, 65535.0]  # underload_value 0 and saturation_value 65535
    # dxtbx's NXmx reader has no pedestal field and reads no polarization (the file holds
    # incident_polarisation_stokes 1, 0.8, 0, 0: DIALS needs polarization_fraction=0.9 by hand)
    assert got["pedestal"] == 0.0
    assert (got["fraction"], got["normal"]) == (0.999, [0.0, 1.0, 0.0])
