"""Fuzzing the command line and the input readers (hypothesis, bounded and reproducible).

Properties:

* ``parse_args`` on any command line built from the flag table returns ``Params`` or raises
  ``UserError`` with a one-line message, nothing else.
* ``nbnumba run`` on such a command line (with a tiny detector) exits 0, 1 or 2, never shows a
  traceback or an internal error, and a failed run prints exactly one ``nbnumba: error:`` line
  and leaves the directory as it found it.
* Every reader, on random bytes and on mutated copies of valid files, returns a result or raises
  ``UserError`` (no ValueError, IndexError, UnicodeDecodeError, MemoryError...), quickly.

The strategies and checks are plain module-level objects so that ``benchmarks/fuzz_long.py``
runs them for many more examples.
"""

from __future__ import annotations

import contextlib
import os
import signal
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from nbnumba.errors import UserError
from nbnumba.io.hkl import HKLTable, read_fdump, read_hkl, write_fdump
from nbnumba.io.matrix import read_mosflm_matrix
from nbnumba.io.smv import read_smv
from nbnumba.io.textcolumns import read_columns
from nbnumba.model.options import FLAGS, parse_args
from nbnumba.model.params import Params

GOLDEN_INPUTS = Path(__file__).resolve().parent / "data" / "golden" / "inputs"

# --- command lines -------------------------------------------------------------------------------

# Every canonical flag, plus the reference's synonyms and abbreviations that reach other branches.
SYNONYMS = ["-mosaic_domains", "-mosaic_dom", "-mosaic_spread", "-wavelength", "-detector_absorb",
            "-pix0_vector_mm", "-floatimage", "-intimage", "-noiseimage", "-pgmimage", "-sample_size",
            "-xtal_size", "-dump_pixel", "-binary_spots", "-molecules", "-detpixels_f", "-detpixels_s",
            "-sample_x", "-xtal_z", "-width", "-height", "-sample_den", "-mosaicity"]


def _flag_kinds() -> dict[str, tuple[int, str]]:
    """flag spelling -> (number of values, kinds), the first table entry that matches it."""
    table: dict[str, tuple[int, str]] = {}
    for flag in FLAGS:
        name = flag.name.split()[0]
        table.setdefault(name, (flag.nargs, flag.kinds or "f" * flag.nargs))
    for name in SYNONYMS:
        for flag in FLAGS:
            if flag.matches(name):
                table.setdefault(name, (flag.nargs, flag.kinds or "f" * flag.nargs))
                break
    return table


FLAG_KINDS = _flag_kinds()
FLAG_NAMES = sorted(FLAG_KINDS)

# Files a fuzzed command line may name; CLI examples run where these exist (copies).
INPUT_FILES = ["A.mat", "sparse.hkl", "header.img", "mask.img", "sources.txt", "bad.hkl", "empty.txt", "big.mat",
               "zero.mat"]
OTHER_PATHS = ["missing.file", ".", "subdir", "out.bin", "out.tif", "out.img", "nodir/x.bin", "/dev/null",
               "Fdump.bin"]

GOOD_FLOATS = st.one_of(
    st.floats(min_value=-1e3, max_value=1e3, allow_nan=False).map(repr),
    st.integers(min_value=-5, max_value=500).map(str),
    st.sampled_from(["0", "1", "0.1", "1.5", "100", "90", "1e-3", "2e2", "6.2"]),
)
GOOD_INTS = st.one_of(st.integers(min_value=-3, max_value=12).map(str), st.sampled_from(["1", "2", "5", "0"]))
WEIRD = st.sampled_from([
    "-0", "0.0", "-1", "-100", "1e300", "-1e300", "1e308", "1e309", "-1e309", "1e-320", "4.9e-324",
    "nan", "NaN", "-nan", "inf", "-inf", "Infinity", "abc", "x1", "1x", "", " ", "1,5", "0x10", "1e", ".",
    "-", "--", "+", "+5", "1_000", "\u0661", "2.5", "99999999999999999999", "-99999999999999999999", "1e20",
    "2147483648", "-2147483649", "rand", "random", "sample", "beam", "double", "single", "cpu", "auto",
    "inf mm", "\u00e9", "a\nb", "5\n", "1e5", "1e9",
])
WORDS = st.sampled_from(["rand", "random", "sample", "beam", "middle", "double", "single", "triple", "cpu",
                         "auto", "tpu", "inf", "infinite", "0", "1", "10", "-1", "x"])
FILES = st.sampled_from(INPUT_FILES + OTHER_PATHS)
UNKNOWN = st.one_of(
    st.sampled_from(["-foo", "-lamda", "--lambda", "-", "--", "-=", "-N2", "-Na_", "-cel", "-x", "-misset",
                     "-random", "-detpixels_z", "-a\nb", "-\u00e9", "x", "5", "-5", "1e3", "--help"]),
    st.text(alphabet="-abcdeNx_0123456789", min_size=1, max_size=8).map(lambda s: "-" + s),
)


def _values(kind: str, cli: bool) -> st.SearchStrategy[str]:
    """Values for one slot of kind f/i/s: mostly sensible, sometimes anything."""
    weird = WEIRD if not cli else WEIRD.filter(lambda v: v != "single")  # one kernel compile is enough
    if kind == "f":
        good = GOOD_FLOATS
    elif kind == "i":
        good = GOOD_INTS
    else:
        good = st.one_of(WORDS, FILES)
    # through the CLI, mostly valid values, so that many examples get as far as rendering
    return st.one_of(good, good, good, weird) if cli else st.one_of(good, good, weird)


@st.composite
def flag_item(draw, cli: bool = False) -> list[str]:
    """One flag with its values; sometimes too few values, an unknown flag or a stray token."""
    choice = draw(st.integers(0, 39 if cli else 19))
    if choice == 0:
        return [draw(UNKNOWN)]
    if choice == 1:
        return [draw(st.one_of(GOOD_FLOATS, WEIRD, FILES))]
    name = draw(st.sampled_from(FLAG_NAMES))
    nargs, kinds = FLAG_KINDS[name]
    if name == "-misset" and draw(st.booleans()):
        return [name, draw(st.sampled_from(["random", "rand", "randomly"]))]
    count = nargs if draw(st.integers(0, 9)) else draw(st.integers(0, max(nargs - 1, 0)))
    return [name, *(draw(_values(kinds[i] if i < len(kinds) else "f", cli)) for i in range(count))]


@st.composite
def command_line(draw, cli: bool = False, max_items: int = 8) -> list[str]:
    items = draw(st.lists(flag_item(cli), max_size=max_items))
    return [token for item in items for token in item]


BASE = ["-cell", "100", "100", "100", "90", "90", "90", "-default_F", "100", "-lambda", "1", "-distance", "100",
        "-N", "2"]
# Forced last, so they win: a tiny detector, one sub-pixel, no noise, PGM or progress meter.
TAIL = ["-detpixels", "4", "-oversample", "1", "-nonoise", "-nopgm", "-noprogress"]


@st.composite
def cli_command_line(draw) -> list[str]:
    prefix = BASE if draw(st.integers(0, 3)) else []
    return [*prefix, *draw(command_line(cli=True, max_items=4)), *TAIL]


def check_parse(argv: list[str]) -> str:
    """parse_args returns Params or raises UserError; returns which.  (A message may hold a newline
    the user typed: the CLI prints it on one line, which check_cli checks.)"""
    try:
        params = parse_args(list(argv))
    except UserError as err:
        assert str(err), "empty error message"
        return "error"
    assert isinstance(params, Params)
    return "ok"


# --- running the CLI in-process ------------------------------------------------------------------

class _TooSlow(BaseException):
    """Raised by the alarm when building a fuzzed simulation takes too long (a huge count)."""


@contextlib.contextmanager
def _time_limit(seconds: float):
    def alarm(signum, frame):
        raise _TooSlow()

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def make_inputs(directory: Path) -> None:
    """The files a fuzzed command line may name (small valid ones, a bad one, a directory)."""
    for name, text in SMALL_TEXT_FILES.items():
        (directory / name).write_bytes(text)
    (directory / "header.img").write_bytes(SMV_SEED)
    (directory / "mask.img").write_bytes(SMV_SEED)
    (directory / "bad.hkl").write_bytes(b"0 0 0 10\n1 0 0 x\n")
    (directory / "empty.txt").write_bytes(b"")
    (directory / "big.mat").write_bytes(b"1e300 0 0\n0 0.01 0\n0 0 0.01\n")
    (directory / "zero.mat").write_bytes(b"0 0 0\n0 0 0\n0 0 0\n")
    (directory / "subdir").mkdir()


MAX_WORK = 2_000_000  # sub-pixel x source x phi x mosaic x layer evaluations allowed in one example


def workload_ok(argv: list[str]) -> bool:
    """False when the command is valid but would render for long (a huge step count): such a
    run is the reference's behaviour too, and not what these tests are about.  Errors are left
    for the CLI to report."""
    from nbnumba.model.simulation import build

    try:
        with _time_limit(2.0):
            sim = build(list(argv))
    except _TooSlow:
        return False
    except Exception:  # noqa: BLE001 - the CLI run shows how it is reported
        return True
    xmin, xmax, ymin, ymax = sim.detector.roi
    pixels = max(0, xmax - xmin + 1) * max(0, ymax - ymin + 1)
    return sim.steps * max(sim.thicksteps, 1) * max(pixels, 1) <= MAX_WORK


def _tree(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


def check_cli(argv: list[str]) -> int | None:
    """Run `nbnumba run argv` in a fresh directory; None when the example's workload is too big."""
    import numba
    from golden import invoke

    threads = numba.get_num_threads()
    with tempfile.TemporaryDirectory() as name:
        cwd = Path(name)
        make_inputs(cwd)
        old = os.getcwd()
        os.chdir(cwd)
        try:
            ok = workload_ok(argv)
        finally:
            os.chdir(old)
        if not ok:
            return None
        before = _tree(cwd)
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                result = invoke("run", list(argv), cwd)
        finally:
            numba.set_num_threads(threads)
        # a Python warning would reach the user's stderr as extra lines (Numba's own are its business)
        noise = [f"{w.category.__name__} at {Path(w.filename).name}:{w.lineno}: {w.message}" for w in caught
                 if not w.category.__name__.startswith("Numba")]
        assert not noise, noise
        output = result.output
        stderr = result.stderr
        assert result.exit_code in (0, 1, 2), (result.exit_code, output)
        assert "Traceback" not in output, output
        assert "internal error" not in output, output
        assert not [p for p in _tree(cwd) if p.endswith(".tmp")], "a temporary file was left behind"
        if result.exit_code != 0:
            lines = [line for line in stderr.splitlines() if line.strip()]
            errors = [line for line in lines if line.startswith("nbnumba: error: ")]
            assert len(errors) == 1 and errors == [ln for ln in lines if ln.startswith("nbnumba")], stderr
            assert _tree(cwd) == before, "a failed run left files behind"
        return result.exit_code


# --- readers -------------------------------------------------------------------------------------

SMALL_TEXT_FILES = {
    "A.mat": b"-0.02837711 -0.00305386 0.02535816\n-0.02871390 0.01019549 -0.01400049\n"
             b"0.01050048 -0.03209440 -0.01036054\n",
    "sparse.hkl": b"0 0 0 100.0\n2 0 0 80.0\n0 2 0 60.0\n-2 0 0 70.0\n0 0 2 90.0\n",
    "sources.txt": b"-10.0 0.0 0.0 1.0 6.2e-10\n-10.0 0.02 0.0 0.5 6.2e-10\n-10.0 0.0 0.02 2.0 6.0e-10\n",
}


def _smv_seed() -> bytes:
    text = (b"{\nHEADER_BYTES=512;\nDIM=2;\nBYTE_ORDER=little_endian;\nTYPE=unsigned_short;\nSIZE1=8;\n"
            b"SIZE2=6;\nPIXEL_SIZE=0.12;\nDISTANCE=120.0;\nWAVELENGTH=1.5;\nBEAM_CENTER_X=0.5;\n"
            b"BEAM_CENTER_Y=0.4;\nPHI=0.0;\nOSC_RANGE=0.0;\nTWOTHETA=0.0;\n}\f")
    pixels = np.arange(48, dtype="<u2") % 3
    return text.ljust(512, b" ") + pixels.tobytes()


def _fdump_seed() -> bytes:
    grid = np.arange(4 * 3 * 5, dtype=np.float64).reshape(4, 3, 5)
    table = HKLTable(-1, 1, 0, 1, -2, 1, 24, grid)
    with tempfile.TemporaryDirectory() as name:
        path = Path(name) / "Fdump.bin"
        write_fdump(path, table)
        return path.read_bytes()


SMV_SEED = _smv_seed()
FDUMP_SEED = _fdump_seed()


def _golden(*names: str, limit: int = 30000) -> list[bytes]:
    out = []
    for name in names:
        path = GOLDEN_INPUTS / name
        if path.is_file():
            out.append(path.read_bytes()[:limit])
    return out


SEEDS = {
    "hkl": [SMALL_TEXT_FILES["sparse.hkl"], b"1 2 3 4 5 6\n-1 -2 -3 4 5 6\n", b"0 0 0 10 1 1 1 20",
            *_golden("sparse.hkl", "test_pattern.hkl", "negative_indices.hkl"),
            *[data[:4000] for data in _golden("P1_dense.hkl")]],
    "fdump": [FDUMP_SEED],
    "matrix": [SMALL_TEXT_FILES["A.mat"], *_golden("A.mat", "ortho.mat")],
    "smv": [SMV_SEED, *_golden("header.img", "mask.img")],
    "columns": [SMALL_TEXT_FILES["sources.txt"], b"0.1 10\n0.2 20\n", *_golden("sources.txt")],
}

READERS = {
    "hkl": lambda path, extra: read_hkl(path, extra),
    "fdump": lambda path, extra: read_fdump(path),
    "matrix": lambda path, extra: read_mosflm_matrix(path),
    "smv": lambda path, extra: read_smv(path),
    "columns": lambda path, extra: read_columns(path, int(extra)),
}
EXTRA = {
    "hkl": st.sampled_from([0.0, 1.0, 100.0]),
    "columns": st.sampled_from([1, 2, 5]),
}

TOKENS = [b"0", b"1", b"-1", b"12", b"-3", b"2.5", b"0.6", b"1e3", b"1e9", b"-1e9", b"1e308", b"1e999", b"nan",
          b"inf", b"-inf", b"Infinity", b"0x1p3", b"0x1p99999", b"e", b".", b"+", b"-", b"x", b"\xff", b"\x00",
          b"2147483647", b"-2147483648", b"99999999999999999999", b"HEADER_BYTES=", b"SIZE1=", b"SIZE2=",
          b"BYTE_ORDER=big_endian;", b"{", b"}", b"\f", b";", b",", b"1e-400", b"DETECTOR_DIMENSIONS="]
SEPARATORS = [b" ", b"\n", b"\t", b"\r\n", b"", b",", b";", b"  ", b"\r", b"\v"]


@st.composite
def token_soup(draw) -> bytes:
    """Files made of number-like tokens: they get past the first checks of the text readers."""
    parts = draw(st.lists(st.tuples(st.sampled_from(TOKENS), st.sampled_from(SEPARATORS)), max_size=40))
    return b"".join(token + sep for token, sep in parts)


@st.composite
def mutated(draw, seeds: list[bytes]) -> bytes:
    """A valid file, damaged: truncated, bits flipped, bytes replaced, inserted or deleted, junk appended."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["truncate", "flip", "replace", "insert", "delete", "append", "number"]))
        n = len(data)
        # half the positions fall in the first 600 bytes, where the headers are
        at = draw(st.one_of(st.integers(0, min(n, 600)), st.integers(0, n)))
        if op == "truncate":
            del data[at:]
        elif op == "flip" and at < n:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "replace" and at < n:
            data[at] = draw(st.integers(0, 255))
        elif op == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete":
            del data[at:at + draw(st.integers(1, 64))]
        elif op == "append":
            data += draw(st.binary(min_size=1, max_size=200))
        elif op == "number":
            data[at:at] = draw(st.sampled_from(TOKENS))
    return bytes(data)


def file_bytes(kind: str) -> st.SearchStrategy[bytes]:
    every_seed = [seed for seeds in SEEDS.values() for seed in seeds]
    return st.one_of(
        st.binary(max_size=1500),
        token_soup(),
        mutated(SEEDS[kind]),
        mutated(SEEDS[kind]),
        mutated(every_seed),
    )


READ_LIMIT_S = 2.0  # a reader call on a file of a few kB must not take longer


def check_reader(kind: str, data: bytes, extra=None, directory: Path | None = None) -> str:
    """The reader returns or raises UserError, within READ_LIMIT_S; returns which."""
    with contextlib.ExitStack() as stack:
        if directory is None:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        path = directory / f"input.{kind}"
        path.write_bytes(data)
        start = time.perf_counter()
        try:
            READERS[kind](str(path), extra)
            outcome = "ok"
        except UserError as err:
            assert str(err) and "\n" not in str(err), f"multi-line error message {str(err)!r}"
            outcome = "error"
        elapsed = time.perf_counter() - start
        assert elapsed < READ_LIMIT_S, f"{kind} reader took {elapsed:.1f} s on {len(data)} bytes"
    return outcome


# --- the tests -----------------------------------------------------------------------------------

FUZZ = dict(deadline=None, derandomize=True, database=None, print_blob=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])


@settings(max_examples=1000, **FUZZ)
@given(command_line())
def test_parse_args_returns_params_or_user_error(argv):
    event(check_parse(argv))


@settings(max_examples=150, **FUZZ)
@given(cli_command_line())
def test_cli_exits_cleanly(argv):
    code = check_cli(argv)
    event("too much work" if code is None else f"exit {code}")
    assume(code is not None)


def _reader_test(kind: str):
    extra = EXTRA.get(kind, st.just(None))

    @settings(max_examples=300, **FUZZ)
    @given(file_bytes(kind), extra)
    def test(data, value):
        event(check_reader(kind, data, value))

    test.__name__ = f"test_{kind}_reader_returns_or_raises_user_error"
    return test


test_hkl_reader = _reader_test("hkl")
test_fdump_reader = _reader_test("fdump")
test_matrix_reader = _reader_test("matrix")
test_smv_reader = _reader_test("smv")
test_columns_reader = _reader_test("columns")

