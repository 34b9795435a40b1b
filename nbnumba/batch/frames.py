"""Frame descriptions: the complete `nbnumba run` argument list of every image a sweep or a batch
job renders, with its output files and a hash of everything that decides its pixels.

A frame's argv is exactly what `nbnumba run` would be given to produce the same files (paths made
absolute, outputs named, seeds explicit), so any frame can be reproduced or checked on its own;
the manifest records it.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from .. import __version__
from ..errors import UserError
from ..io.atomic import check_distinct
from ..model.options import FLAGS, RTD, parse_args, suggest
from ..model.params import Params
from ..model.sampling import phi_steps

DEFAULT_SEED = 1  # base noise seed of a sweep given no -seed (frame i gets DEFAULT_SEED + i)

# run flags whose value is an input file (made absolute, and their size and time hashed)
INPUT_FLAGS = ("-mat", "-hkl", "-img", "-mask", "-sourcefile", "-stolout", "-stol", "-4stol", "-Q", "-bg_stol",
               "-bg_4stol", "-bg_Q")
INPUT_ATTRS = ("matfile", "hklfile", "imgfile", "maskfile", "sourcefile", "stolout_file", "stol_file", "bg_stol_file")
OUTPUT_FLAGS = ("-floatfile", "-intfile", "-pgmfile", "-noisefile", "-out")
_FLAG_BY_NAME = {f.name: f for f in FLAGS}

TRUE_WORDS = {"1", "y", "yes", "true", "on", "x"}
FALSE_WORDS = {"0", "n", "no", "false", "off"}


@dataclass(frozen=True)
class Frame:
    """One image to render: sent to a worker as is."""

    key: str  # manifest key: the frame number of a sweep, the row number of a batch
    label: str  # how messages name it: "frame 3", "row 3 (line 7)"
    argv: tuple  # the complete `nbnumba run` argument list
    files: tuple  # the output files it writes (all must exist for the frame to count as done)
    digest: str  # hash of argv, input files (size, mtime) and nbnumba version
    job: str  # hash of the job's base argv: the key of the per-worker state
    # the Fdump.bin a run without -hkl would read: the one in the directory the job was started
    # from, wherever the worker runs
    fdump: str = field(default_factory=lambda: os.path.abspath("Fdump.bin"))
    sink: str | None = None  # the job's one HDF5 file: the worker returns the pixels instead of writing
    index: int = 0  # the frame's place in that file
    floats: bool = False  # the sink also keeps the float image
    data: str = "int"  # the image the sink keeps: int, noise or float
    compression: str = "gzip"  # of the sink's datasets: the worker encodes its chunks


@dataclass
class Job:
    """Everything a sweep or batch run renders, and where it keeps its manifest."""

    command: str  # "sweep" or "batch"
    frames: list  # Frame, in order
    manifest: str  # path of the manifest JSON
    errors: list = field(default_factory=list)  # (key, label, message) of frames refused before rendering
    total: int = 0  # frames + refused rows
    sink: str | None = None  # sweep -format nexus / batch -format hdf5: the one file of the job
    sink_key: str = ""  # hash of what the file's fixed contents depend on
    compression: str = "gzip"
    images: str = "float"  # batch -format hdf5: which image goes into `images`
    rescale: object = None  # sweep without -scale: scale -> the job with that scale pinned in every frame
    scale_probe: object = None  # the frame whose maximum sets that scale
    command_line: str = ""  # the sweep or batch command, for the notes of HDF5 files
    label_rows: list = field(default_factory=list)  # batch -format hdf5: each frame's label values


@dataclass
class Outputs:
    """What the sweep/batch options ask to be written besides the SMV int image."""

    outdir: str = "."
    prefix: str | None = None  # default: "image" for a sweep, the job file's name for a batch
    floats: bool = False
    noise: bool = False
    pgm: bool = False
    format: str = "smv"  # sweep: smv or nexus; batch: smv or hdf5
    compression: str = "gzip"  # of the HDF5 datasets: gzip, none or bslz4 (hdf5plugin)
    images: str | None = None  # batch -format hdf5: float, int or noise (default: noise with -noise, else float)
    out: str | None = None  # batch -format hdf5: the file


class LazyFrames(Sequence):
    """A sweep's frames first .. first + count - 1, each made when it is looked at: a sweep costs
    nothing for the frames a command does not reach (-max_frames)."""

    def __init__(self, make, first: int, count: int):
        self.make, self.first, self.count = make, first, count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self.count))]
        if i < 0:
            i += self.count
        if not 0 <= i < self.count:
            raise IndexError(i)
        return self.make(self.first + i)


def fmt(x: float) -> str:
    """A number for an argument list: 12 significant digits, so 0.1 * 3 reads 0.3."""
    text = f"{x:.12g}"
    return "0" if text == "-0" else text


def job_key(argv: list[str]) -> str:
    return hashlib.sha256(json.dumps(list(argv)).encode()).hexdigest()[:16]


def input_paths(params: Params) -> list[str]:
    """The files a frame reads (which none of its outputs may replace)."""
    return [path for path in (getattr(params, attr, None) for attr in INPUT_ATTRS) if path]


def _file_stat(path: str):
    try:
        st = os.stat(path)
    except OSError:
        return "missing"
    return [st.st_size, st.st_mtime_ns]


def digest(argv: list[str], params: Params | None) -> str:
    """sha256 of what decides a frame's files: its argv, its input files' size and modification
    time (a changed -hkl or -mat file makes the frame stale), and the nbnumba version."""
    inputs = {}
    if params is not None:
        for attr in INPUT_ATTRS:
            path = getattr(params, attr, None)
            if path:
                inputs[os.path.abspath(path)] = _file_stat(path)
        if params.hklfile is None:  # run falls back to ./Fdump.bin
            inputs[os.path.abspath("Fdump.bin")] = _file_stat("Fdump.bin")
    blob = json.dumps({"argv": list(argv), "inputs": inputs, "version": __version__}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _matching(flags, arg: str) -> bool:
    return any(_FLAG_BY_NAME[name].matches(arg) for name in flags)


def absolute_paths(argv: list[str]) -> list[str]:
    """The argv with the values of input and output file flags made absolute, so that workers
    with another working directory (a remote cluster on a shared file system) find them."""
    out = list(argv)
    i = 0
    while i < len(out):
        arg = out[i]
        if arg.startswith("-") and i + 1 < len(out) and _matching(INPUT_FLAGS + OUTPUT_FLAGS, arg):
            value = out[i + 1]
            if value != os.devnull and not os.path.isabs(value):
                out[i + 1] = os.path.abspath(value)
            i += 2
            continue
        i += 1
    return out


def named_outputs(argv: list[str]) -> Params:
    """The argv parsed over a Params whose output names and mosaic seed are None and whose PGM and
    noise images are off: what is left set is what the flags themselves asked for."""
    base = Params()
    base.floatfile = base.intfile = base.pgmfile = base.noisefile = base.mosaic_seed = None
    base.write_pgm = base.calculate_noise = False
    return parse_args(list(argv), base=base)


def output_flags(asked: Params, opts: Outputs, number: int, digits: int) -> tuple[list[str], list[str]]:
    """Output flags to append to a frame's argv (explicit names win over the generated ones) and
    the files they write.  Generated names: OUTDIR/PREFIX_00001.img (.bin, .pgm) and
    OUTDIR/PREFIX_noise_00001.img.  The float image goes to os.devnull unless asked for."""
    stem = os.path.join(opts.outdir, opts.prefix)
    n = f"{number:0{digits}d}"
    intfile = asked.intfile or f"{stem}_{n}.img"
    floatfile = asked.floatfile or (f"{stem}_{n}.bin" if opts.floats else os.devnull)
    pgmfile = (asked.pgmfile or f"{stem}_{n}.pgm") if (asked.write_pgm or opts.pgm) else None
    noisefile = (asked.noisefile or f"{stem}_noise_{n}.img") if (asked.calculate_noise or opts.noise) else None
    flags = ["-floatfile", floatfile, "-intfile", intfile]
    flags += ["-pgmfile", pgmfile] if pgmfile else ["-nopgm"]
    flags += ["-noisefile", noisefile] if noisefile else ["-nonoise"]
    files = [f for f in (floatfile, intfile, pgmfile, noisefile) if f and f != os.devnull]
    return flags, [os.path.abspath(f) for f in files]


def _digits(last: int) -> int:
    return max(5, len(str(last)))


# ---------------------------------------------------------------- sweep

def sweep_frames(argv: list[str], nframes: int, opts: Outputs, first: int = 1) -> Job:
    """A rotation series: frame n (1-based; i = n - 1) starts at phi0 + i*osc and covers osc, with
    the run's phi steps inside it; its noise seed is S + i (S: the -seed given, else 1) and, with
    -misset random, its misset seed stays S so that every frame shows the same crystal.  Frames
    first .. first + nframes - 1 are made: `-first` renders a part of the same sweep.

    Without -scale, the job comes back with `rescale` and `scale_probe` set: the engine renders
    the probe (frame 1's float image), picks one int scale from it and calls `rescale(scale)` for
    the frames to render, every one with `-scale` in its argv (see SCALE_HEADROOM)."""
    from ..model.simulation import parse_command

    if nframes < 1:
        raise UserError(f"-nframes must be at least 1, got {nframes}")
    if first < 1:
        raise UserError(f"-first must be at least 1, got {first}")
    nexus = opts.format == "nexus"
    if nexus and opts.pgm:
        raise UserError("-pgm makes one preview file per frame; a -format nexus sweep writes one file: remove -pgm")
    if nexus and first != 1:
        raise UserError("-first splits a sweep over commands that write their own files; a -format nexus "
                        "sweep is one file written by one command (use -max_frames to split it in time)")
    asked = named_outputs(argv)
    named = [flag for flag, attr in (("-floatfile/-out", "floatfile"), ("-intfile", "intfile"),
                                     ("-pgmfile", "pgmfile"), ("-noisefile", "noisefile"),
                                     ("-nexus", "nexusfile"))
             if getattr(asked, attr) is not None]
    if named:
        raise UserError(f"sweep names its frames itself (-outdir DIR -prefix NAME, -floats, -noise, -pgm, "
                        f"-format nexus): remove {', '.join(named)}")
    p, _ = parse_command(argv)
    steps, osc, _step = phi_steps(p.phisteps, p.osc, p.phistep, RTD)
    if not osc > 0.0:
        raise UserError("a sweep needs an oscillation range per frame: give -osc DEG (or -phistep/-phisteps)")
    phi0_deg, osc_deg = p.phi0 * RTD, osc * RTD
    seed = -p.seed if p.seed is not None else DEFAULT_SEED
    pin_misset = p.misset == "random" and p.misset_seed is None
    if opts.prefix is None:
        opts.prefix = "image"
    key = job_key(argv)
    digits = _digits(first + nframes - 1)
    sink = os.path.abspath(os.path.join(opts.outdir, f"{opts.prefix}.nxs")) if nexus else None
    noise = asked.calculate_noise or opts.noise
    # -osc given per frame may change the number of phi steps the run infers: keep the sweep's
    q = parse_args(list(argv) + ["-phi", fmt(phi0_deg), "-osc", fmt(osc_deg)])
    extra_steps = ["-phisteps", str(steps)] if phi_steps(q.phisteps, q.osc, q.phistep, RTD)[0] != steps else []

    def frame_argv(number: int) -> list[str]:
        i = number - 1
        argv_i = list(argv) + ["-phi", fmt(phi0_deg + i * osc_deg), "-osc", fmt(osc_deg)] + extra_steps
        argv_i += ["-seed", str(seed + i)]
        if pin_misset:
            argv_i += ["-misset_seed", str(seed)]
        return argv_i

    # every frame reads the same input files: parsed once for the hashes
    params = parse_args(absolute_paths(frame_argv(first) + output_flags(asked, opts, first, digits)[0]))

    def make(number: int) -> Frame:
        flags, files = output_flags(asked, opts, number, digits)
        argv_i = absolute_paths(frame_argv(number) + flags)
        if nexus:
            return Frame(str(number), f"frame {number}", tuple(argv_i), (sink,),
                         digest(argv_i + ["-format", "nexus", opts.compression], params), key,
                         sink=sink, index=number - 1, floats=opts.floats,
                         data="noise" if noise else "int", compression=opts.compression)
        return Frame(str(number), f"frame {number}", tuple(argv_i), tuple(files), digest(argv_i, params), key)

    frames = LazyFrames(make, first, nframes)
    manifest = os.path.abspath(os.path.join(opts.outdir, f"{opts.prefix}_manifest.json"))
    job = Job("sweep", frames, manifest, total=nframes, sink=sink, sink_key=key, compression=opts.compression)
    # no int scale to choose for noise images in one file, nor under the detector response (its
    # int and noise images are counts at -gain)
    if p.intfile_scale <= 0.0 and not (nexus and noise) and not p.response:
        probe = absolute_paths(frame_argv(1) + ["-floatfile", os.devnull, "-intfile", os.devnull,
                                                "-nopgm", "-nonoise"])
        job.scale_probe = Frame("probe", "frame 1", tuple(probe), (),
                                digest(probe, params), key)
        job.rescale = lambda scale: _rescaled(sweep_frames(list(argv) + ["-scale", fmt(scale)], nframes, opts,
                                                           first), job)
    return job


def _rescaled(new: Job, old: Job) -> Job:
    new.command_line = old.command_line
    return new


# ---------------------------------------------------------------- batch

@dataclass
class Column:
    name: str  # the flag, with its dash
    switch: bool  # takes no value: the cell says yes or no
    whole: bool  # one value that may contain spaces (a file name)
    raw: bool = False  # the `args` column: flags written out
    own: bool = False  # a column of the calling command, not a run flag: its value kept whole


def _column(name: str, where: str, own: tuple = ()) -> Column:
    bare = name.strip().lstrip("-")
    if not bare:
        raise UserError(f"{where}: empty column name")
    if bare in ("args", "flags"):
        return Column(bare, False, False, raw=True)
    if bare in own:
        return Column(bare, False, True, own=True)
    flag = "-" + bare
    for f in FLAGS:
        if f.name == "-misset random" or not f.matches(flag):
            continue
        return Column(flag, f.nargs == 0, f.nargs == 1 and f.kinds == "s")
    raise UserError(f"{where}: column {bare!r} is not a run flag{suggest(flag)}")


def cell_tokens(col: Column, cell: str, where: str) -> list[str]:
    cell = cell.strip()
    if not cell:
        return []
    if col.raw:
        try:
            return shlex.split(cell)
        except ValueError as err:
            raise UserError(f"{where}: args {cell!r}: {err}") from None
    if col.switch:
        word = cell.lower()
        if word in TRUE_WORDS:
            return [col.name]
        if word in FALSE_WORDS:
            return []
        raise UserError(f"{where}: {col.name} is a switch: write 1 or 0 (yes/no), got {cell!r}")
    return [col.name, cell] if col.whole else [col.name, *cell.split()]


def read_jobfile(path: str, own: tuple = ()) -> tuple[list[str], list[Column], list[tuple[int, int, list[str]]]]:
    """(base argv, columns, [(row number, line number, cells)]) of a batch job file; `own` names
    the columns of the calling command that are not run flags (refine's `data`, `frame`).

    Format (CSV): lines starting with # are comments, except `# base: FLAGS`, whose flags (shell
    quoting) form the base command line of every row (several such lines add up).  The first
    other line is the header: run flag names, without or with the dash; a column `args` takes
    extra flags written out.  Each further line is one image: a cell gives its flag's values
    (several values separated by spaces: `10 20 30` for misset), an empty cell leaves the flag to
    the base, a switch column (nonoise, interpolate...) takes 1/0 or yes/no.
    """
    try:
        with open(path, newline="", encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"cannot read {path}: {getattr(err, 'strerror', None) or err}") from None
    base: list[str] = []
    header = None
    rows = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            body = stripped[1:].strip()
            if body.lower().startswith("base:"):
                try:
                    base += shlex.split(body[5:])
                except ValueError as err:
                    raise UserError(f"{path} line {lineno}: base: {err}") from None
            continue
        cells = next(csv.reader([line], skipinitialspace=True))
        if header is None:
            header = [_column(name, f"{path} line {lineno}", own) for name in cells]
            continue
        rows.append((len(rows) + 1, lineno, cells))
    if header is None:
        raise UserError(f"{path}: no header line (flag names separated by commas)")
    if not rows:
        raise UserError(f"{path}: no rows after the header")
    return base, header, rows


def batch_frames(path: str, extra: list[str], opts: Outputs) -> Job:
    """One frame per row of the job file: base flags, command-line flags, then the row's cells.
    A row without -seed (in the base or the row) gets -seed ROW, its 1-based row number."""
    base, columns, rows = read_jobfile(path)
    try:
        parse_args(base + list(extra))
    except UserError as err:
        raise UserError(f"{path}: base flags: {err}") from None
    if opts.prefix is None:
        opts.prefix = os.path.splitext(os.path.basename(path))[0]
    base = base + list(extra)
    key = job_key(base)
    digits = _digits(len(rows))
    hdf5 = opts.format == "hdf5"
    if hdf5 and (opts.floats or opts.pgm):
        raise UserError("a -format hdf5 batch keeps one image per row (-images float, int or noise): "
                        "remove -floats/-pgm")
    sink = os.path.abspath(opts.out or os.path.join(opts.outdir, f"{opts.prefix}.h5")) if hdf5 else None
    images = opts.images or ("noise" if opts.noise else "float")
    if images not in ("float", "int", "noise"):
        raise UserError(f"-images expects float, int or noise, got {images!r}")
    keep_noise = hdf5 and images == "noise"
    frames, errors, label_rows = [], [], []
    for number, lineno, cells in rows:
        label = f"row {number} (line {lineno})"
        try:
            if len(cells) > len(columns) and any(c.strip() for c in cells[len(columns):]):
                raise UserError(f"{len(cells)} cells but the header names {len(columns)} columns")
            argv = list(base)
            for col, cell in zip(columns, cells):
                argv += cell_tokens(col, cell, "cell")
            asked = named_outputs(argv)
            if asked.seed is None:
                argv += ["-seed", str(number)]
            # a random orientation per row is a different crystal per row: its mosaic domains too
            if asked.misset == "random" and asked.mosaic_seed is None:
                argv += ["-mosaic_seed", str(number)]
            # a row whose noise image the file keeps asks for it, so that its argv reproduces it
            flags, files = output_flags(asked, replace(opts, noise=True) if keep_noise else opts, number, digits)
            argv = absolute_paths(argv + flags)
            params = parse_args(argv)
            check_distinct(files, input_paths(params))
        except UserError as err:
            errors.append((str(number), label, str(err)))
            continue
        if hdf5:
            from .sink import label_values
            label_rows.append(label_values(params))
            frames.append(Frame(str(number), label, tuple(argv), (sink,),
                                digest(argv + ["-format", "hdf5", images, opts.compression], params), key,
                                sink=sink, index=number - 1, data=images, compression=opts.compression))
        else:
            frames.append(Frame(str(number), label, tuple(argv), tuple(files), digest(argv, params), key))
    owners: dict = {}
    for frame in ([] if hdf5 else frames):  # an HDF5 batch writes one file for all rows
        for name in frame.files:
            owners.setdefault(name, []).append(frame.key)
    clash = {name: keys for name, keys in owners.items() if len(keys) > 1}
    if clash:
        name, keys = next(iter(clash.items()))
        raise UserError(f"{path}: rows {', '.join(keys)} all write {name}: give each row its own output names")
    manifest = os.path.abspath(os.path.join(opts.outdir, f"{opts.prefix}_manifest.json"))
    sink_key = job_key(base + [r for _, _, cells in rows for r in cells] + [images])
    return Job("batch", frames, manifest, errors=errors, total=len(rows), sink=sink, sink_key=sink_key,
               compression=opts.compression, images=images, label_rows=label_rows)

