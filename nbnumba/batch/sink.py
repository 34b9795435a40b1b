"""One HDF5 file for a whole job, written by the client alone as frames come back from workers:
a NeXus sweep (`sweep -format nexus`: DIR/NAME.nxs) or a training set (`batch -format hdf5`:
`images`, `labels`, `geom`).  Workers return their frame's pixels instead of writing files; a frame
is recorded in the manifest only after its chunk is flushed, so the manifest never claims a frame
the file lacks (and the file's `written` flags say the same).
"""

from __future__ import annotations

import contextlib
import math
import os

import numpy as np

from ..errors import RuntimeFailure

# Params fields that describe files, output choices or the run itself, not the image's physics
_NOT_LABELS = {"argv", "floatfile", "intfile", "pgmfile", "noisefile", "nexusfile", "write_pgm",
               "calculate_noise", "printout", "progress", "nthreads", "device", "precision",
               "trace_spixel", "trace_fpixel", "printout_spixel", "printout_fpixel", "pgm_scale"}
DERIVED = [f"A_star_{r}{c}" for r in "abc" for c in "xyz"] + ["d_edge_A"]
DERIVED_UNITS = ["1/angstrom"] * 9 + ["angstrom"]


def label_values(p) -> dict:
    """The values of a Params that describe the image: numbers as floats, lists flattened (cell_0 ..
    cell_5, misset_0 .. misset_2), text as str (file names, -misset random, the convention)."""
    out = {}
    for name, value in vars(p).items():
        if name in _NOT_LABELS or value is None:
            continue
        if name in ("seed", "mosaic_seed", "misset_seed"):
            value = -value  # Params keeps seeds negated, as the reference's ran1 wants them
        if isinstance(value, str):
            out[name] = value
        elif isinstance(value, (list, tuple)):
            if all(isinstance(v, (int, float)) for v in value):
                out.update({f"{name}_{i}": float(v) for i, v in enumerate(value)})
        elif isinstance(value, (bool, int, float)):
            out[name] = float(value)
    return out


def _same(a, b) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


def _varying(rows: list[dict], text: bool) -> list[str]:
    missing = "" if text else math.nan
    names = sorted({k for r in rows for k, v in r.items() if isinstance(v, str) == text})
    return [n for n in names if any(not _same(r.get(n, missing), rows[0].get(n, missing)) for r in rows)]


def label_columns(rows: list[dict]) -> tuple[list[str], np.ndarray]:
    """(names, table) of the numeric values (`label_values` of each row) that differ between rows;
    NaN where a row has none (`-misset random` has no misset angles)."""
    varying = _varying(rows, text=False)
    table = [[r[n] if isinstance(r.get(n), float) else math.nan for n in varying] for r in rows]
    return varying, np.array(table, dtype=float).reshape(len(rows), -1)


def text_columns(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    """(names, table) of the text values that differ between rows ("" where a row has none)."""
    varying = _varying(rows, text=True)
    return varying, [[r[n] if isinstance(r.get(n), str) else "" for n in varying] for r in rows]


# SI units of the Params fields (what the labels hold); a field not named here is a pure number
_UNITS = {
    "m": ("sample_x", "sample_y", "sample_z", "pixel_size", "distance", "close_distance", "detsize_f", "detsize_s",
          "detector_thick", "detector_thickstep", "Xbeam", "Ybeam", "Xclose", "Yclose", "lambda0",
          "source_distance", "beamsize", "water_size", "bg_thick", "psf_fwhm", "dmin", "pix0_user"),
    "rad": ("mosaic_spread", "misset", "detector_rotx", "detector_roty", "detector_rotz", "detector_twotheta",
            "hdivrange", "hdivstep", "vdivrange", "vdivstep", "phi0", "phistep", "osc"),
    "pixels": ("ORGX", "ORGY", "roi", "fpixels", "spixels", "psf_radius"),
    "g/m^3": ("density", "bg_density"), "g/mol": ("molecular_weight", "bg_MW"), "1/m": ("detector_mu",),
    "1/m per table unit": ("stol_file_mult", "bg_stol_unit"), "photons/m^2": ("fluence",),
    "photons/s": ("flux",), "s": ("exposure",), "ADU": ("readout_noise", "adc_offset"),
    "ADU/photon": ("gain", "intfile_scale"), "fraction": ("dispersion", "flicker_noise", "calibration_noise"),
}
UNIT_OF = {field: unit for unit, fields in _UNITS.items() for field in fields}


def unit_of(column: str) -> str:
    """The unit of a label column: cell_0..2 are the axes a, b, c in angstrom and cell_3..5 the
    angles alpha, beta, gamma in rad; vectors (fdet_vector_0..2 ...) are lab x, y, z."""
    if column.startswith("cell_"):
        return "angstrom" if int(column[5:]) < 3 else "rad"
    field, _, index = column.rpartition("_")
    return UNIT_OF.get(column) or (UNIT_OF.get(field, "") if index.isdigit() else "")


# Each row's detector and beam (the `geometry` group): name, values per row, unit, meaning (for a
# vector: the order of its components)
ROW_GEOMETRY = [
    ("distance", 1, "m", "sample to detector plane along the beam"),
    ("close_distance", 1, "m", "sample to detector plane along its normal"),
    ("wavelength", 1, "m", "the central wavelength"),
    ("beam_center", 2, "m", "fast, slow: where the direct beam meets the detector, from the first pixel's outer "
                            "corner"),
    ("beam_center_px", 2, "pixels", "fast, slow: beam_center in pixels (pixel i spans i to i + 1)"),
    ("pix0", 3, "m", "x, y, z lab frame: the first pixel's outer corner"),
    ("fdet", 3, "", "x, y, z lab frame: unit vector along the fast axis"),
    ("sdet", 3, "", "x, y, z lab frame: unit vector along the slow axis"),
    ("odet", 3, "", "x, y, z lab frame: unit normal of the detector"),
    ("beam", 3, "", "x, y, z lab frame: unit vector of the incident beam"),
]


def row_geometry(sim) -> dict:
    """One row's values of ROW_GEOMETRY (lists of floats), from the detector it rendered."""
    det = sim.detector
    return {"distance": [det.distance], "close_distance": [det.close_distance], "wavelength": [sim.lambda0],
            "beam_center": [det.Fbeam, det.Sbeam],
            "beam_center_px": [det.Fbeam / det.pixel_size, det.Sbeam / det.pixel_size],
            "pix0": list(det.pix0), "fdet": list(det.fdet), "sdet": list(det.sdet), "odet": list(det.odet),
            "beam": list(det.beam)}


def derived_labels(sim) -> list[float]:
    """The orientation (reciprocal axes a*, b*, c* in 1/A, lab frame, phi = 0) and the resolution
    of the largest circle about the direct beam that the detector holds whole (A)."""
    c = sim.crystal
    det = sim.detector
    values = [float(x) for v in (c.a_star, c.b_star, c.c_star) for x in v]
    # the perimeter, sampled at every pixel boundary
    f = np.arange(det.fpixels + 1) * det.pixel_size
    s = np.arange(det.spixels + 1) * det.pixel_size
    width, height = det.fpixels * det.pixel_size, det.spixels * det.pixel_size
    edge_f = np.concatenate([f, f, np.zeros(s.size), np.full(s.size, width)])
    edge_s = np.concatenate([np.zeros(f.size), np.full(f.size, height), s, s])
    pix0, fd, sd = (np.asarray(v, dtype=float) for v in (det.pix0, det.fdet, det.sdet))
    pos = pix0 + edge_f[:, None] * fd + edge_s[:, None] * sd
    cos2t = pos @ np.asarray(det.beam, dtype=float) / np.linalg.norm(pos, axis=1)
    theta = 0.5 * np.arccos(np.clip(cos2t.max(), -1.0, 1.0))
    values.append(sim.lambda0 * 1e10 / (2.0 * math.sin(theta)) if theta > 0 else math.inf)
    return values


def _sim(frame):
    from ..model.simulation import build
    return build(list(frame.argv), fdump_path=frame.fdump)


class NexusSink:
    """A sweep's frames in one NXmx file; frame numbers 1..N at indices 0..N-1."""

    def __init__(self, job, frames):
        from ..io.nexus import SeriesWriter, geometry
        self.path = job.sink
        first = frames[0]
        g = geometry(sim := _sim(first), job.command_line)
        g.extra["images_are"] = first.data
        if sim.params.response:  # the detector's counts: ADU at -gain, no int scale (as run -nexus)
            g.extra["int_scale"] = sim.params.gain
        elif first.data == "int":
            g.extra["int_scale"] = sim.params.intfile_scale
        self.writer = SeriesWriter(self.path, g, job.total, job.sink_key, floats=first.floats,
                                   compression=job.compression)

    def open(self):
        self.writer.open()
        self.held = self.writer.done()
        return self

    def has(self, frame) -> bool:
        return frame.index in self.held

    def write(self, frame, result) -> None:
        self.writer.write(frame.index, result.get("data"), result.get("floats"), result.get("chunk"),
                          result.get("float_chunk"))

    def note(self) -> str | None:
        if self.writer.replaced:
            return f"{self.path} was started over ({self.writer.replaced})"
        return None

    def close(self) -> None:
        self.writer.close()


class DatasetSink:
    """A batch as one training set: `images` (N x slow x fast), `labels` (N x columns, with the
    column names and units in its `columns` and `units` attributes), `text_labels` (the text
    parameters that differ between rows: file names, -misset random...), each row's detector and
    beam in `geometry` (ROW_GEOMETRY, units and component order as attributes), `written` flags,
    and the first row's geometry in NeXus terms in `geom`."""

    def __init__(self, job, frames):
        self.path, self.job, self.frames = job.sink, job, frames
        self.file = None
        self.replaced = None
        sim = _sim(frames[0])
        self.shape = sim.shape
        self.kind = job.images
        self.dtype = np.float32 if self.kind == "float" else np.uint16
        self.names, self.table = label_columns(job.label_rows)
        self.text_names, self.text_table = text_columns(job.label_rows)
        # int or noise images of rows that all have the detector response at one -gain: the
        # detector's counts in ADU at that gain (the `int_scale` attribute, as run -nexus says)
        rows = job.label_rows
        gains = {r.get("gain") for r in rows}
        self.gain = (gains.pop() if self.kind != "float" and rows and len(gains) == 1
                     and all(r.get("response") for r in rows) else None)
        self.row_of = {frame.index: j for j, frame in enumerate(frames)}
        self.columns = self.names + DERIVED
        from ..io.nexus import geometry, lab_to_mcstas
        self.geom = geometry(sim, job.command_line)
        det = sim.detector
        self.origin_mm = lab_to_mcstas(det.beam) @ np.asarray(det.pix0, dtype=float) * 1000.0

    def _matches(self) -> bool:
        from ..io.nexus import readable
        with readable(self.path) as f:
            try:
                return (f is not None and f.attrs.get("nbnumba_job") == self.job.sink_key
                        and f["images"].dtype == self.dtype and f["images"].shape == (self.job.total, *self.shape)
                        and list(f["labels"].attrs["columns"]) == self.columns and "written" in f
                        and "geometry" in f and list(f["text_labels"].attrs["columns"]) == self.text_names)
            except KeyError:
                return False

    def _create(self, temp: str) -> None:
        import h5py

        from ..io.nexus import _filters
        n = self.job.total
        with h5py.File(temp, "w") as f:
            f.attrs["nbnumba_job"] = self.job.sink_key
            f.attrs["images_are"] = self.kind
            if self.gain is not None:
                f.attrs["int_scale"] = self.gain
            f.create_dataset("images", shape=(n, *self.shape), dtype=self.dtype, chunks=(1, *self.shape),
                             fillvalue=np.nan if self.kind == "float" else 0, **_filters(self.job.compression))
            labels = f.create_dataset("labels", shape=(n, len(self.columns)), dtype=np.float64, fillvalue=np.nan)
            labels.attrs["columns"] = self.columns
            labels.attrs["units"] = [unit_of(name) for name in self.names] + DERIVED_UNITS
            text = f.create_dataset("text_labels", shape=(n, len(self.text_names)), dtype=h5py.string_dtype())
            text.attrs["columns"] = self.text_names
            rows = f.create_group("geometry")
            rows.attrs["frame"] = "nbnumba's lab frame (MOSFLM: the beam along +x), as sim.detector holds it"
            for name, width, unit, meaning in ROW_GEOMETRY:
                d = rows.create_dataset(name, shape=(n, width) if width > 1 else (n,), dtype=np.float64,
                                        fillvalue=np.nan)
                d.attrs["units"] = unit
                d.attrs["order" if width > 1 else "meaning"] = meaning
            f.create_dataset("written", shape=(n,), dtype=np.uint8, fillvalue=0)
            g = self.geom
            geom = f.create_group("geom")
            for name in ("fast", "slow", "pixel_mm", "shape", "spindle", "wavelength_A", "distance_mm",
                         "beam_center_px", "thickness_mm", "command"):
                geom[name] = getattr(g, name)
            geom["origin_mm"] = self.origin_mm
            geom.attrs["frame"] = ("McStas (NeXus): beam along +z, y up; values of the first row "
                                   "(each row's own are in /geometry)")
            geom["beam_center_px"].attrs["order"] = "fast, slow (pixel corners: pixel i spans i to i + 1)"

    def open(self):
        import h5py

        from ..io.atomic import atomic_path
        exists = os.path.exists(self.path)
        if exists and not self._matches():
            self.replaced = "it was made by other flags or could not be read"
        if not exists or self.replaced:
            with atomic_path(self.path) as temp:
                self._create(temp)
        try:
            self.file = h5py.File(self.path, "r+")
        except OSError as err:
            raise RuntimeFailure(f"cannot write {self.path}: {err} (is another command writing it?)") from None
        self.held = set(np.flatnonzero(self.file["written"][()]).tolist())
        return self

    def has(self, frame) -> bool:
        return frame.index in self.held

    def write(self, frame, result) -> None:
        from ..io.atomic import failure
        from ..io.nexus import store
        f = self.file
        i = frame.index
        try:
            store(f["images"], i, result.get("data"), result.get("chunk"))
            row = list(self.table[self.row_of[i]])
            f["labels"][i] = np.array(row + list(result["derived"]), dtype=np.float64)
            if self.text_names:
                f["text_labels"][i] = self.text_table[self.row_of[i]]
            for name, values in result["geometry"].items():
                f["geometry"][name][i] = values if len(values) > 1 else values[0]
            f["written"][i] = 1
            f.flush()
        except OSError as err:
            raise failure(self.path, err) from None

    def note(self) -> str | None:
        return f"{self.path} was started over ({self.replaced})" if self.replaced else None

    def close(self) -> None:
        if self.file is not None:
            with contextlib.suppress(OSError):  # a full disk was reported by the write that met it
                self.file.close()
            self.file = None


class _Held:
    """An open sink and the lock that keeps every other command from writing its file."""

    def __init__(self, sink, lock_fd: int):
        self.sink, self.lock_fd = sink, lock_fd

    def __getattr__(self, name):
        return getattr(self.sink, name)

    def close(self) -> None:
        try:
            self.sink.close()
        finally:
            os.close(self.lock_fd)  # closing releases the lock


def _lock(path: str) -> int:
    """An exclusive lock on `.NAME.lock` beside the job's file, held while the job runs: a second
    command writing the same file is refused, whatever its flags (a file made by other flags
    would otherwise be started over under the first command)."""
    import fcntl

    lock = os.path.join(os.path.dirname(path), "." + os.path.basename(path) + ".lock")
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as err:
        raise RuntimeFailure(f"cannot write {lock}: {err.strerror or err}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise RuntimeFailure(f"cannot write {path}: another command is writing it") from None
    return fd


def open_sink(job):
    """The job's HDF5 sink, opened and locked, or None for jobs that write one file per frame."""
    if not job.sink or not job.frames:
        return None
    cls = NexusSink if job.command == "sweep" else DatasetSink
    fd = _lock(job.sink)
    try:
        return _Held(cls(job, job.frames).open(), fd)
    except BaseException:
        os.close(fd)
        raise
