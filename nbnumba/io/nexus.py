"""NeXus/HDF5 (NXmx) images: one file holds one image or a whole rotation series, with the
geometry written out as NXtransformations instead of left to a reader's guess from a header.

nanoBragg's lab frame has the beam along +x (MOSFLM-like conventions); NeXus uses the McStas
frame, beam along +z and y up.  `lab_to_mcstas` is the one place that converts between them.
The detector chain, read from the pixel outwards, is: the module's fast/slow pixel steps, the
in-plane `module_offset`, a `distance` translation along the unrotated normal, then the
rotations the reference applies in its own order (about x, y, z, then two-theta), so any reader
that evaluates the chain (dxtbx, `read_geometry` below) puts every pixel where nbnumba did.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import math
import os
import zlib
from dataclasses import dataclass, field

import numpy as np

from ..errors import RuntimeFailure, UserError

SUFFIXES = (".nxs", ".h5", ".nx5")
ENTRY = "/entry"
DATA = "/entry/data/data"
FLOATS = "/entry/simulation/float_image"
WRITTEN = "/entry/simulation/frame_written"
DET = "/entry/instrument/detector"
DET_T = DET + "/transformations"
SAMPLE_AXIS = "/entry/sample/transformations/phi"
COMPRESSIONS = ("gzip", "none", "bslz4")
THIN_MM = 1e-9

# beam +x, y up, z = x cross y (nanoBragg, MOSFLM) -> beam +z, y up, x = y cross z (McStas)
_MOSFLM_TO_MCSTAS = np.array([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


def is_nexus_name(path) -> bool:
    return isinstance(path, str) and path.lower().endswith(SUFFIXES)


def rotation(axis, angle: float) -> np.ndarray:
    """Right-handed rotation by `angle` (radians) about the unit vector `axis` (as rotate_axis3)."""
    a = np.asarray(axis, dtype=float)
    k = np.array([[0.0, -a[2], a[1]], [a[2], 0.0, -a[0]], [-a[1], a[0], 0.0]])
    return np.cos(angle) * np.eye(3) + np.sin(angle) * k + (1.0 - np.cos(angle)) * np.outer(a, a)


def lab_to_mcstas(beam=(1.0, 0.0, 0.0)) -> np.ndarray:
    """The proper rotation M (McStas = M @ lab) that takes the beam direction to +z.

    For the usual beam along +x it keeps y (up) and sends the lab's z to -x; for any other beam
    (the XDS/DIALS conventions' +z, a custom -beam_vector) the beam is first turned onto +x by
    the smallest rotation, so the answer is a rotation of the whole experiment, which leaves
    every measurement unchanged."""
    b = np.asarray(beam, dtype=float)
    b = b / np.linalg.norm(b)
    x = np.array([1.0, 0.0, 0.0])
    axis = np.cross(b, x)
    s, c = np.linalg.norm(axis), float(np.dot(b, x))
    if s < 1e-12:
        turn = np.eye(3) if c > 0 else rotation((0.0, 1.0, 0.0), math.pi)
    else:
        turn = rotation(axis / s, math.atan2(s, c))
    return _MOSFLM_TO_MCSTAS @ turn


@dataclass
class Axis:
    """One NXtransformations entry: value(s) in mm or degrees along/about `vector` (McStas)."""

    name: str
    kind: str  # "translation" or "rotation"
    vector: tuple
    value: float
    depends_on: str  # absolute path, or "."


@dataclass
class Geometry:
    """Everything an NXmx file says about one image's experiment, in the McStas frame and the
    file's units (mm, degrees, Angstrom)."""

    fast: tuple  # module axes before the detector rotations
    slow: tuple
    pixel_mm: float
    shape: tuple  # (slow, fast) pixels
    module_offset: Axis
    chain: list  # detector Axis entries, nearest the module first
    spindle: tuple
    phi0_deg: float
    osc_deg: float
    wavelength_A: float
    distance_mm: float
    beam_center_px: tuple  # (fast, slow), pixel-corner coordinates
    thickness_mm: float
    command: str = ""
    extra: dict = field(default_factory=dict)
    stokes: tuple = (1.0, 0.0, 0.0, 0.0)  # the incident beam's polarization (S0..S3, McStas x and y)
    exposure_s: float = 1.0
    adc_offset: float = 0.0  # counts added to every pixel of the int and noise images


def _vec(v) -> tuple:
    return tuple(float(x) for x in v)


def geometry(sim, command: str = "") -> Geometry:
    """The NXmx description of a built Simulation (nbnumba.model.simulation.build)."""
    det, p = sim.detector, sim.params
    M = lab_to_mcstas(det.beam)
    ex, ey, ez = np.eye(3)
    tt_axis = np.asarray(det.twotheta_axis, dtype=float)
    norm = np.linalg.norm(tt_axis)
    tt_axis = tt_axis / norm if norm > 0 else ez
    rx, ry, rz, tt = p.detector_rotx, p.detector_roty, p.detector_rotz, p.detector_twotheta
    total = rotation(tt_axis, tt) @ rotation(ez, rz) @ rotation(ey, ry) @ rotation(ex, rx)
    inverse = total.T
    f0, s0, o0 = (inverse @ np.asarray(v, dtype=float) for v in (det.fdet, det.sdet, det.odet))
    p0 = inverse @ np.asarray(det.pix0, dtype=float) * 1000.0  # mm, before the rotations
    normal = float(np.dot(p0, o0))
    in_plane = M @ (p0 - normal * o0)
    length = float(np.linalg.norm(in_plane))
    direction = in_plane / length if length > 0 else M @ f0
    rot = [("rotx", M @ ex, rx), ("roty", M @ ey, ry), ("rotz", M @ ez, rz), ("twotheta", M @ tt_axis, tt)]
    chain = [Axis("distance", "translation", _vec(M @ o0), normal, f"{DET_T}/{rot[0][0]}")]
    for i, (name, vector, angle) in enumerate(rot):
        after = f"{DET_T}/{rot[i + 1][0]}" if i + 1 < len(rot) else "."
        chain.append(Axis(name, "rotation", _vec(vector), math.degrees(angle), after))
    offset = Axis("module_offset", "translation", _vec(direction), length, f"{DET_T}/distance")
    return Geometry(fast=_vec(M @ f0), slow=_vec(M @ s0), pixel_mm=det.pixel_size * 1000.0,
                    shape=(det.spixels, det.fpixels), module_offset=offset, chain=chain,
                    spindle=_vec(M @ np.asarray(det.spindle, dtype=float)),
                    phi0_deg=math.degrees(sim.phi0), osc_deg=math.degrees(sim.osc),
                    wavelength_A=sim.lambda0 * 1e10, distance_mm=det.distance * 1000.0,
                    beam_center_px=(det.Fbeam / det.pixel_size, det.Sbeam / det.pixel_size),
                    thickness_mm=p.detector_thick * 1000.0, command=command,
                    stokes=stokes(p.polarization, M @ np.asarray(det.polar_vector, dtype=float)),
                    exposure_s=p.exposure, adc_offset=p.adc_offset)


def stokes(kahn: float, e_vector) -> tuple:
    """The Stokes vector (S0, S1, S2, S3) of a beam along McStas z with nanoBragg's Kahn factor
    (its linearly polarized fraction) and E-vector axis: S1 = K cos 2psi, S2 = K sin 2psi, psi the
    axis's angle from x towards y."""
    psi = math.atan2(float(e_vector[1]), float(e_vector[0]))
    return (1.0, kahn * math.cos(2.0 * psi), kahn * math.sin(2.0 * psi), 0.0)


# ---------------------------------------------------------------- writing

def _filters(compression: str) -> dict:
    if compression == "none":
        return {}
    if compression == "gzip":
        return {"compression": "gzip", "compression_opts": 2, "shuffle": True}
    if compression == "bslz4":
        try:
            import hdf5plugin
        except ImportError:
            raise UserError("-compression bslz4 needs hdf5plugin: pip install 'nbnumba[hdf5plugin]'") from None
        return dict(hdf5plugin.Bitshuffle(cname="lz4"))
    raise UserError(f"-compression expects {', '.join(COMPRESSIONS)}, got {compression!r}")


def encode_chunk(image: np.ndarray, compression: str) -> bytes | None:
    """One image as the stored bytes of its chunk (shuffle, then deflate, as h5py's gzip
    pipeline), so that workers compress in parallel and the one writer only copies bytes; None
    for filters left to HDF5 (bslz4)."""
    data = np.ascontiguousarray(image)
    if compression == "none":
        return data.tobytes()
    if compression == "gzip":
        return zlib.compress(data.view(np.uint8).reshape(-1, data.dtype.itemsize).T.tobytes(), 2)
    return None


def store(dataset, index: int, image: np.ndarray | None, chunk: bytes | None) -> None:
    """Frame `index` of a chunked (frames, slow, fast) dataset, from encoded bytes when given."""
    if chunk is not None:
        dataset.id.write_direct_chunk((index, 0, 0), chunk)
    else:
        dataset[index] = image


def _group(parent, name: str, nx_class: str):
    g = parent.require_group(name)
    g.attrs["NX_class"] = nx_class
    return g


def _axis(group, axis: Axis, values=None):
    data = np.atleast_1d(np.asarray(axis.value if values is None else values, dtype=float))
    d = group.create_dataset(axis.name, data=data)
    d.attrs["transformation_type"] = axis.kind
    d.attrs["vector"] = np.asarray(axis.vector, dtype=float)
    d.attrs["units"] = "mm" if axis.kind == "translation" else "deg"
    d.attrs["depends_on"] = axis.depends_on
    return d


def _metadata(f, g: Geometry, nframes: int) -> None:
    """Everything but the pixels: entry, instrument, detector chain, module, beam, sample."""
    entry = _group(f, "entry", "NXentry")
    f.attrs["default"] = "entry"
    entry.attrs["default"] = "data"
    entry["definition"] = "NXmx"
    entry["start_time"] = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    from .. import __version__
    entry["program_name"] = "nbnumba"
    entry["program_name"].attrs["version"] = __version__
    entry["program_name"].attrs["configuration"] = g.command
    note = _group(entry, "command_line", "NXnote")
    note["type"] = "text/plain"
    note["description"] = "the nbnumba command line that made this file"
    note["data"] = g.command
    instrument = _group(entry, "instrument", "NXinstrument")
    instrument["name"] = "nbnumba simulation"
    beam = _group(instrument, "beam", "NXbeam")
    beam["incident_wavelength"] = g.wavelength_A
    beam["incident_wavelength"].attrs["units"] = "angstrom"
    beam["incident_polarisation_stokes"] = np.asarray(g.stokes, dtype=float)
    det = _group(instrument, "detector", "NXdetector")
    det["depends_on"] = f"{DET_T}/distance"
    det["description"] = "nbnumba simulated pixel array detector"
    det["type"] = "pixel"
    # nanoBragg names no material: its default attenuation depth is silicon's
    det["sensor_material"] = "Si"
    # without -detector_thick nanoBragg renders no depth (no parallax); readers need a positive
    # thickness, and 1 pm gives them a parallax correction far below a pixel
    det["sensor_thickness"] = g.thickness_mm if g.thickness_mm > 0 else THIN_MM
    det["sensor_thickness"].attrs["units"] = "mm"
    det["saturation_value"] = np.int32(65535)  # the int and noise images are clipped there
    det["underload_value"] = np.int32(0)  # ... and at 0
    # dxtbx takes the exposure from frame_time (exposure and readout: a simulator reads out in no time)
    for name in ("count_time", "frame_time"):
        det[name] = g.exposure_s
        det[name].attrs["units"] = "s"
    # NXmx has no field for a pedestal: said here for people, dxtbx assumes none
    det["adc_offset"] = g.adc_offset
    det["adc_offset"].attrs["units"] = "counts"
    det["adc_offset"].attrs["description"] = "added to every pixel of the int and noise images (-adc)"
    for name, value in (("x_pixel_size", g.pixel_mm), ("y_pixel_size", g.pixel_mm),
                        ("distance", g.distance_mm)):
        det[name] = value
        det[name].attrs["units"] = "mm"
    det["beam_center_x"], det["beam_center_y"] = g.beam_center_px
    det["beam_center_x"].attrs["units"] = det["beam_center_y"].attrs["units"] = "pixel"
    t = _group(det, "transformations", "NXtransformations")
    for axis in g.chain:
        _axis(t, axis)
    module = _group(det, "module", "NXdetector_module")
    module["data_origin"] = np.array([0, 0], dtype=np.int64)
    module["data_size"] = np.array(g.shape, dtype=np.int64)
    module_path = f"{DET}/module"
    _axis(module, g.module_offset)
    for name, vector in (("fast_pixel_direction", g.fast), ("slow_pixel_direction", g.slow)):
        _axis(module, Axis(name, "translation", vector, g.pixel_mm, f"{module_path}/module_offset"))
    sample = _group(entry, "sample", "NXsample")
    sample["name"] = "nbnumba crystal"
    sample["depends_on"] = SAMPLE_AXIS
    st = _group(sample, "transformations", "NXtransformations")
    starts = g.phi0_deg + g.osc_deg * np.arange(nframes)
    _axis(st, Axis("phi", "rotation", g.spindle, 0.0, "."), starts)
    st["phi_end"] = starts + g.osc_deg
    st["phi_end"].attrs["units"] = "deg"
    st["phi_increment_set"] = g.osc_deg
    st["phi_increment_set"].attrs["units"] = "deg"
    _group(entry, "data", "NXdata").attrs["signal"] = "data"
    simulation = _group(entry, "simulation", "NXcollection")
    for name, value in g.extra.items():
        simulation[name] = value


def _create_images(f, g: Geometry, nframes: int, dtype, floats: bool, compression: str) -> None:
    filters = _filters(compression)
    shape = (nframes, *g.shape)
    chunks = (1, *g.shape)
    f.create_dataset(DATA, shape=shape, dtype=dtype, chunks=chunks, fillvalue=0, **filters)
    f[DET + "/data"] = f[DATA]  # NXmx puts the data in the detector too: a hard link, one copy
    if floats:
        f.create_dataset(FLOATS, shape=shape, dtype=np.float32, chunks=chunks, fillvalue=np.nan, **filters)
    f.create_dataset(WRITTEN, shape=(nframes,), dtype=np.uint8, fillvalue=0)


def write_image(path: str, g: Geometry, image: np.ndarray, floats: np.ndarray | None = None,
                compression: str = "gzip") -> None:
    """One image as a complete NXmx file, written to a temporary name and renamed (atomic)."""
    import h5py

    from .atomic import atomic_path
    with atomic_path(path) as temp:
        with h5py.File(temp, "w") as f:
            _metadata(f, g, 1)
            _create_images(f, g, 1, image.dtype, floats is not None, compression)
            f[DATA][0] = image
            if floats is not None:
                f[FLOATS][0] = floats
            f[WRITTEN][0] = 1


@contextlib.contextmanager
def readable(path: str):
    """The HDF5 file at `path` opened for reading, or None when it is missing or does not open; a
    file another process holds open for writing stops the command instead of being replaced."""
    import h5py
    try:
        f = h5py.File(path, "r")
    except FileNotFoundError:
        yield None
        return
    except OSError as err:
        if "lock" in str(err).lower():
            raise RuntimeFailure(f"cannot write {path}: another command is writing it") from None
        yield None
        return
    try:
        yield f
    finally:
        f.close()


class SeriesWriter:
    """A rotation series in one NXmx file, filled frame by frame by one process.

    The file is created whole (metadata, angles of every frame, empty chunked datasets) under a
    temporary name and renamed, then reopened and written in place: each frame's chunk is written
    and the file flushed before `write` returns, so the caller records a frame as done only once
    it is on disk.  A file made for another job (its `job` attribute differs) or that no longer
    opens (killed in the middle of a flush) is replaced."""

    def __init__(self, path: str, g: Geometry, nframes: int, job: str, dtype=np.uint16,
                 floats: bool = False, compression: str = "gzip"):
        self.path, self.g, self.nframes, self.job = path, g, nframes, job
        self.dtype, self.floats, self.compression = np.dtype(dtype), floats, compression
        self.file = None
        self.replaced = None  # why an existing file was started over, for the summary

    def _matches(self) -> bool:
        with readable(self.path) as f:
            try:
                return (f is not None and f[ENTRY].attrs.get("nbnumba_job") == self.job
                        and f[DATA].shape[0] == self.nframes and f[DATA].dtype == self.dtype
                        and (FLOATS in f) == self.floats and WRITTEN in f)
            except KeyError:
                return False

    def done(self) -> set[int]:
        """Frame indices (0-based) the open file holds."""
        return set(np.flatnonzero(self.file[WRITTEN][()]).tolist())

    def open(self) -> "SeriesWriter":
        import h5py

        from .atomic import atomic_path
        exists = os.path.exists(self.path)
        if exists and not self._matches():
            self.replaced = "it was made by other flags or could not be read"
        if not exists or self.replaced:
            with atomic_path(self.path) as temp:
                with h5py.File(temp, "w") as f:
                    _metadata(f, self.g, self.nframes)
                    f[ENTRY].attrs["nbnumba_job"] = self.job
                    _create_images(f, self.g, self.nframes, self.dtype, self.floats, self.compression)
        try:
            self.file = h5py.File(self.path, "r+")
        except OSError as err:
            raise RuntimeFailure(f"cannot write {self.path}: {err} (is another command writing it?)") from None
        return self

    def write(self, index: int, image=None, floats=None, chunk=None, float_chunk=None) -> None:
        """Frame `index`: the arrays, or their chunks as `encode_chunk` makes them."""
        from .atomic import failure
        f = self.file
        try:
            store(f[DATA], index, image, chunk)
            if self.floats:
                store(f[FLOATS], index, floats, float_chunk)
            f[WRITTEN][index] = 1
            f.flush()
        except OSError as err:
            raise failure(self.path, err) from None

    def close(self) -> None:
        if self.file is not None:
            with contextlib.suppress(Exception):
                self.file.close()
            self.file = None


# ---------------------------------------------------------------- reading

def _unreadable(path: str, err: OSError) -> UserError:
    missing_filter = any(word in str(err).lower() for word in ("filter", "plugin"))
    hint = " (a -compression bslz4 file needs pip install 'nbnumba[hdf5plugin]')" if missing_filter else ""
    return UserError(f"{path}: not a readable HDF5 file: {err}{hint}")


def _with_plugins():
    """h5py, with hdf5plugin's filters registered when it is installed: a -compression bslz4 file
    reads only through them (h5py itself knows gzip alone)."""
    import h5py
    with contextlib.suppress(ImportError):
        import hdf5plugin  # noqa: F401 - importing registers the filters
    return h5py


def read_frames(path: str, dataset: str | None = None):
    """The image stack of an NXmx file (or any HDF5 file with an `images` or `entry/data/data`
    dataset) as an h5py-backed numpy array: (frames, slow, fast)."""
    h5py = _with_plugins()
    try:
        with h5py.File(path, "r") as f:
            for name in ([dataset] if dataset else [DATA, "images"]):
                if name in f:
                    data = f[name][()]
                    return data if data.ndim == 3 else data[np.newaxis]
    except OSError as err:
        raise _unreadable(path, err) from None
    raise UserError(f"{path}: no {dataset or 'entry/data/data or images'} dataset")


def read_frame(path: str, index: int = 0, dataset: str | None = None) -> np.ndarray:
    """One image (slow, fast) of an HDF5 file; `index` counts from 0 (messages count from 1)."""
    h5py = _with_plugins()
    try:
        with h5py.File(path, "r") as f:
            names = [dataset] if dataset else [DATA, "images"]
            for name in names:
                if name in f:
                    d = f[name]
                    if d.ndim == 2:
                        d = d[np.newaxis]
                    if not -d.shape[0] <= index < d.shape[0]:
                        raise UserError(f"{path}: no frame {index + 1}: it has {d.shape[0]} (1..{d.shape[0]})")
                    return d[index]
    except OSError as err:
        raise _unreadable(path, err) from None
    raise UserError(f"{path}: no {' or '.join(names)} dataset")


def _matrix(d) -> np.ndarray:
    """4x4 transformation of one NXtransformations dataset (first value), mm and radians."""
    value = float(np.atleast_1d(d[()])[0])
    vector = np.asarray(d.attrs["vector"], dtype=float)
    A = np.eye(4)
    if d.attrs["transformation_type"] in ("rotation", b"rotation"):
        A[:3, :3] = rotation(vector / np.linalg.norm(vector), math.radians(value))
    else:
        A[:3, 3] = value * vector
    if "offset" in d.attrs:
        A[:3, 3] += np.asarray(d.attrs["offset"], dtype=float)
    return A


def _chain(f, path: str) -> np.ndarray:
    A = np.eye(4)
    while path and path != ".":
        d = f[path]
        A = _matrix(d) @ A
        after = d.attrs.get("depends_on", ".")
        path = after.decode() if isinstance(after, bytes) else str(after)
    return A


def read_geometry(path: str) -> dict:
    """The pixel geometry an NXmx file describes, by evaluating its depends_on chains: origin
    (corner of pixel 0,0), fast and slow unit vectors in mm in the McStas frame, pixel size,
    wavelength, rotation axis and the start angle and width of each frame."""
    import h5py
    with h5py.File(path, "r") as f:
        fast = f[DET + "/module/fast_pixel_direction"]
        slow = f[DET + "/module/slow_pixel_direction"]
        A = _chain(f, fast.attrs["depends_on"])
        R = A[:3, :3]
        phi = f[SAMPLE_AXIS]
        starts = np.atleast_1d(phi[()]).astype(float)
        return {"origin_mm": A[:3, 3], "fast": R @ np.asarray(fast.attrs["vector"], dtype=float),
                "slow": R @ np.asarray(slow.attrs["vector"], dtype=float),
                "pixel_mm": float(np.atleast_1d(fast[()])[0]),
                "wavelength_A": float(f[ENTRY + "/instrument/beam/incident_wavelength"][()]),
                "spindle": np.asarray(phi.attrs["vector"], dtype=float), "phi_deg": starts,
                "osc_deg": float(f["/entry/sample/transformations/phi_increment_set"][()]),
                "shape": tuple(int(x) for x in f[DET + "/module/data_size"][()])}
