"""File formats against the reference's recorded outputs (the golden corpus)."""

import ctypes
import ctypes.util
import errno
import gzip
import hashlib
import json
import math
import os
import random
import re
import struct
from pathlib import Path

import numpy as np
import pytest

from nbnumba.errors import RuntimeFailure, UserError
from nbnumba.io import atomic
from nbnumba.io.atomic import atomic_open, atomic_write_bytes
from nbnumba.io.hkl import read_fdump, read_hkl, write_fdump
from nbnumba.io.images import pgm_bytes, read_float_image, write_float_image, write_pgm
from nbnumba.io.matrix import read_mosflm_matrix
from nbnumba.io.smv import SMVFields, cfmt_g, read_smv, smv_header, smv_value, write_smv
from nbnumba.io.textcolumns import c_atof, read_columns

GOLDEN = Path(__file__).resolve().parent / "data" / "golden"
CASES = GOLDEN / "cases"
INPUTS = GOLDEN / "inputs"



def manifest():
    return json.loads((CASES / "manifest.json").read_text())["cases"]


def smv_cases():
    return sorted(str(p.relative_to(CASES)) for p in CASES.glob("*/*.img"))


def write(path: Path, text: str) -> Path:
    path.write_bytes(text.encode("latin-1"))
    return path


def no_temp_files(directory: Path) -> bool:
    return not [p for p in directory.iterdir() if p.name.endswith(".tmp")]


# --- atomic writes -------------------------------------------------------------------------


def test_atomic_write_creates_and_replaces(tmp_path):
    target = tmp_path / "out.bin"
    atomic_write_bytes(target, b"first")
    atomic_write_bytes(target, b"second")
    assert target.read_bytes() == b"second"
    assert no_temp_files(tmp_path)


def test_atomic_open_failure_leaves_existing_file(tmp_path):
    target = tmp_path / "out.bin"
    target.write_bytes(b"precious")
    with pytest.raises(KeyError):
        with atomic_open(target) as f:
            f.write(b"half a file")
            raise KeyError("interrupted")
    assert target.read_bytes() == b"precious"
    assert no_temp_files(tmp_path)


def test_atomic_missing_directory(tmp_path):
    target = tmp_path / "no" / "such" / "dir" / "out.img"
    with pytest.raises(RuntimeFailure, match=r"cannot write .*out\.img: No such file or directory"):
        atomic_write_bytes(target, b"x")


def test_atomic_disk_full_keeps_target(tmp_path, monkeypatch):
    target = tmp_path / "out.bin"
    target.write_bytes(b"precious")

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic.os, "fsync", full)
    with pytest.raises(RuntimeFailure, match="No space left on device"):
        atomic_write_bytes(target, b"new contents")
    assert target.read_bytes() == b"precious"
    assert no_temp_files(tmp_path)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_atomic_device_full():
    with pytest.raises(RuntimeFailure, match="cannot write /dev/full: No space left"):
        atomic_write_bytes("/dev/full", b"x" * 100000)


def test_atomic_dev_null_is_written_not_replaced():
    atomic_write_bytes("/dev/null", b"discarded")
    assert Path("/dev/null").is_char_device()


def test_atomic_keeps_symlink(tmp_path):
    real = tmp_path / "real.bin"
    link = tmp_path / "link.bin"
    real.write_bytes(b"old")
    link.symlink_to(real)
    atomic_write_bytes(link, b"new")
    assert link.is_symlink()
    assert real.read_bytes() == b"new"


def test_atomic_directory_target(tmp_path):
    with pytest.raises(RuntimeFailure, match="cannot write"):
        atomic_write_bytes(tmp_path, b"x")
    assert no_temp_files(tmp_path)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores permissions")
def test_atomic_permission_denied(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(RuntimeFailure, match="Permission denied"):
            atomic_write_bytes(locked / "out.bin", b"x")
    finally:
        locked.chmod(0o700)


# --- C number formatting and parsing ---------------------------------------------------------


@pytest.mark.parametrize(
    "value, text",
    [
        (0.0, "0"),
        (-0.0, "-0"),
        (100000.0, "100000"),
        (1e6, "1e+06"),
        (999999.5, "1e+06"),
        (1234567.0, "1.23457e+06"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (12.85, "12.85"),
        (-12.9, "-12.9"),
        (129.5, "129.5"),
        (6.2, "6.2"),
        (2.5e-300, "2.5e-300"),
        (math.inf, "inf"),
        (-math.inf, "-inf"),
        (math.nan, "nan"),
        (-math.nan, "-nan"),
    ],
)
def test_cfmt_g_known(value, text):
    assert cfmt_g(value) == text


def _libc_g(value: float) -> str:
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    buffer = ctypes.create_string_buffer(64)
    libc.snprintf(buffer, 64, b"%g", ctypes.c_double(value))
    return buffer.value.decode()


@pytest.mark.skipif(ctypes.util.find_library("c") is None, reason="no C library to compare with")
def test_cfmt_g_matches_c_printf():
    rng = random.Random(1234)
    values = [0.5, 1.5, 2.5, 9999995.0, 99999.95, 0.000123456500, 5e-324, 1.7976931348623157e308]
    for _ in range(400):
        kind = rng.random()
        if kind < 0.3:
            values.append(rng.uniform(-1000, 1000))
        elif kind < 0.6:
            values.append(rng.choice([-1, 1]) * 10 ** rng.uniform(-12, 12))
        elif kind < 0.8:
            values.append(round(rng.uniform(-1e4, 1e4), rng.randint(0, 6)))
        else:
            values.append(struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0])
    mismatches = [(v, cfmt_g(v), _libc_g(v)) for v in values if cfmt_g(v) != _libc_g(v)]
    assert mismatches == []


@pytest.mark.parametrize(
    "text, value",
    [
        ("12.5;", 12.5),
        ("  -3e2xyz", -300.0),
        ("1e", 1.0),
        (".5", 0.5),
        ("+7.", 7.0),
        ("0x1p4", 16.0),
        ("0xZ", 0.0),
        ("abc", 0.0),
        ("", 0.0),
        ("-Infinity", -math.inf),
    ],
)
def test_c_atof(text, value):
    assert c_atof(text) == value


def test_c_atof_nan():
    assert math.isnan(c_atof("nan(123)"))


# --- SMV -------------------------------------------------------------------------------------


def test_smv_value_semantics():
    header = "{\nDISTANCE=100;\nCLOSE_DISTANCE=90;\nSIZE1= 12abc;\nNOEQUALS\nBAD=x;\n}"
    assert smv_value(header, "DISTANCE") == 90.0  # last occurrence, even inside another key
    assert smv_value(header, "SIZE1") == 12.0
    assert smv_value(header, "BAD") == 0.0
    assert smv_value(header, "NOEQUALS") == 0.0
    assert math.isnan(smv_value(header, "WAVELENGTH"))


def test_read_smv_golden_simple_cubic():
    image = read_smv(CASES / "simple_cubic" / "int.img")
    assert (image.width, image.height, image.header_size) == (256, 256, 512)
    assert image.header.startswith("{\nHEADER_BYTES=512;\nDIM=2;\nBYTE_ORDER=little_endian;")
    assert image.data.dtype == np.uint16 and image.data.shape == (256, 256)
    assert image.data[128, 128] == 55040
    assert image.data[0, 0] == 2044
    assert image.data[100, 128] == 1487
    assert smv_value(image.header, "BEAM_CENTER_X") == 12.85
    assert smv_value(image.header, "WAVELENGTH") == 6.2


def test_read_smv_golden_noise():
    image = read_smv(CASES / "noise_seed" / "noise.img")
    assert image.data.shape == (96, 96)
    assert image.data[48, 48] == 196
    assert image.data[0, 0] == 40
    assert int(image.data.sum(dtype=np.int64)) == 396447


def test_read_smv_input_headers():
    header = read_smv(INPUTS / "header.img")
    assert (header.width, header.height) == (128, 96)
    assert not header.data.any()
    assert smv_value(header.header, "PIXEL_SIZE") == 0.12
    assert smv_value(header.header, "DISTANCE") == 120.0
    assert smv_value(header.header, "BEAM_CENTER_Y") == 6.5
    mask = read_smv(INPUTS / "mask.img")
    assert mask.data.shape == (96, 128)
    assert int(mask.data.sum()) == 11400
    assert mask.data[0, :5].tolist() == [0, 0, 0, 1, 1]


def _fields_from_header(header: str) -> SMVFields:
    def v(key):
        return smv_value(header, key)

    origin = re.search(r"DIALS_ORIGIN=([^\n]*)\n", header).group(1).split(",")
    return SMVFields(
        pixel_size_mm=v("PIXEL_SIZE"),
        distance_mm=v("\nDISTANCE"),  # plain DISTANCE would find CLOSE_DISTANCE
        wavelength_A=v("WAVELENGTH"),
        beam_center_x_mm=v("BEAM_CENTER_X"),
        beam_center_y_mm=v("BEAM_CENTER_Y"),
        adxv_center_x_mm=v("ADXV_CENTER_X"),
        adxv_center_y_mm=v("ADXV_CENTER_Y"),
        mosflm_center_x_mm=v("MOSFLM_CENTER_X"),
        mosflm_center_y_mm=v("MOSFLM_CENTER_Y"),
        denzo_x_beam_mm=v("DENZO_X_BEAM"),
        denzo_y_beam_mm=v("DENZO_Y_BEAM"),
        dials_origin_mm=tuple(c_atof(c) for c in origin),
        xds_orgx=v("XDS_ORGX"),
        xds_orgy=v("XDS_ORGY"),
        close_distance_mm=v("CLOSE_DISTANCE"),
        phi_deg=v("PHI"),
        osc_start_deg=v("OSC_START"),
        osc_range_deg=v("OSC_RANGE"),
        twotheta_deg=v("TWOTHETA"),
    )


def test_golden_smv_files_exist():
    assert len(smv_cases()) >= 12


@pytest.mark.parametrize("name", smv_cases())
def test_write_smv_reproduces_golden(name, tmp_path):
    golden = (CASES / name).read_bytes()
    image = read_smv(CASES / name)
    assert list(image.data.shape) == manifest()[name.split("/")[0]]["shape"]
    fields = _fields_from_header(image.header)
    assert smv_header(image.width, image.height, fields) == golden[:512]
    out = tmp_path / "out.img"
    write_smv(out, image.data, fields)
    assert out.read_bytes() == golden


def test_write_smv_accepts_mapping(tmp_path):
    golden = (CASES / "rect_detector" / "int.img").read_bytes()
    image = read_smv(CASES / "rect_detector" / "int.img")
    fields = vars(_fields_from_header(image.header)) | {"size1": 160, "size2": 96}
    write_smv(tmp_path / "out.img", image.data, fields)
    assert (tmp_path / "out.img").read_bytes() == golden
    with pytest.raises(ValueError, match="SIZE1, SIZE2"):
        write_smv(tmp_path / "bad.img", image.data, fields | {"size1": 96})


def _smv_bytes(header_lines: str, pixels: bytes, header_bytes: int = 512) -> bytes:
    return ("{\n" + header_lines + "}\f").encode().ljust(header_bytes, b" ") + pixels


def test_read_smv_big_endian_and_larger_header(tmp_path):
    values = np.array([[1, 2, 3], [256, 513, 65535]], dtype=">u2")
    path = tmp_path / "big.img"
    header = "HEADER_BYTES=1024;\nBYTE_ORDER=big_endian;\nSIZE1=3;\nSIZE2=2;\n"
    path.write_bytes(_smv_bytes(header, values.tobytes(), 1024))
    image = read_smv(path)
    assert image.header_size == 1024
    assert image.data.dtype == np.uint16
    assert image.data.tolist() == [[1, 2, 3], [256, 513, 65535]]


def test_read_smv_detector_dimensions(tmp_path):
    path = tmp_path / "square.img"
    path.write_bytes(_smv_bytes("HEADER_BYTES=512;\nDETECTOR_DIMENSIONS=2;\n", bytes(8)))
    assert read_smv(path).data.shape == (2, 2)


@pytest.mark.parametrize(
    "contents, message",
    [
        (b"", "only 0 bytes"),
        (b"{\nHEADER_BYTES=512;\n", "shorter than a 512-byte header"),
        (b"P5\n".ljust(600), "does not start with '{'"),
        (_smv_bytes("SIZE1=2;\nSIZE2=2;\n", bytes(8)), "no positive HEADER_BYTES"),
        (_smv_bytes("HEADER_BYTES=512;\nSIZE1=2;\n", bytes(8)), "lacks a positive SIZE1 and SIZE2"),
        (_smv_bytes("HEADER_BYTES=512;\nSIZE1=-4;\nSIZE2=2;\n", bytes(8)), "lacks a positive SIZE1"),
        (_smv_bytes("HEADER_BYTES=512;\nSIZE1=4;\nSIZE2=4;\n", bytes(31)), "truncated SMV image: 4x4 pixels"),
    ],
)
def test_read_smv_errors(tmp_path, contents, message):
    path = tmp_path / "bad.img"
    path.write_bytes(contents)
    with pytest.raises(UserError, match=re.escape(message)) as error:
        read_smv(path)
    assert str(path) in str(error.value)
    assert "\n" not in str(error.value)


def test_read_smv_missing(tmp_path):
    with pytest.raises(UserError, match=r"cannot read .*nothing\.img: No such file"):
        read_smv(tmp_path / "nothing.img")


def test_smv_header_grows_to_next_512_bytes_when_values_do_not_fit(tmp_path):
    huge = -1.23456e-300
    fields = SMVFields(*([huge] * 11), (huge, huge, huge), *([huge] * 7))
    header = smv_header(2**31 - 1, 2**31 - 1, fields)
    assert len(header) == 1024
    assert header.startswith(b"{\nHEADER_BYTES=1024;\n")
    path = tmp_path / "long.img"
    write_smv(path, np.arange(6, dtype=np.uint16).reshape(2, 3), fields)
    back = read_smv(path)
    assert back.header_size == 1024
    assert back.data.tolist() == [[0, 1, 2], [3, 4, 5]]


def test_write_smv_unwritable_keeps_nothing(tmp_path):
    fields = SMVFields(*([0.0] * 11), (0.0, 0.0, 0.0), *([0.0] * 7))
    with pytest.raises(RuntimeFailure, match="cannot write"):
        write_smv(tmp_path / "missing" / "x.img", np.zeros((2, 2), np.uint16), fields)


# --- HKL and Fdump ---------------------------------------------------------------------------

# sha256 of the Fdump.bin the reference nanoBragg writes for these inputs (-default_F as given).
REFERENCE_FDUMP_SHA256 = {
    ("test_pattern.hkl", 0.0): "2067675984c65d70df08ff96a9d5988ed60025a379e786283a0f3e710e8593de",
    ("test_pattern.hkl", 7.0): "51b7dc0416d12810dd815c4205fe2a8ca2a034115d5cda944765657341c1aed3",
    ("negative_indices.hkl", 0.0): "0e4ae089b2e19716277cff8df24a6185ea2644181ec953f26e365981df194226",
    ("scaled.hkl", 0.0): "29a427209e14ce2f1fc8e4f5f61eacc194f6c4cb1f5c6a6ca20bf19c244978c5",
}


@pytest.mark.parametrize("name, default_F", sorted(REFERENCE_FDUMP_SHA256))
def test_fdump_matches_reference(tmp_path, name, default_F):
    table = read_hkl(INPUTS / name, default_F)
    write_fdump(tmp_path / "Fdump.bin", table)
    digest = hashlib.sha256((tmp_path / "Fdump.bin").read_bytes()).hexdigest()
    assert digest == REFERENCE_FDUMP_SHA256[(name, default_F)]


def test_read_hkl_test_pattern():
    table = read_hkl(INPUTS / "test_pattern.hkl", 0.0)
    assert (table.h_min, table.h_max, table.k_min, table.k_max, table.l_min, table.l_max) == (0, 2, 0, 2, 0, 0)
    assert table.count == 6
    assert table.grid.shape == (4, 4, 2)
    assert table.grid[0, 0, 0] == 100.0
    assert table.grid[1, 0, 0] == 50.0
    assert table.grid[2, 0, 0] == 200.0
    assert table.grid[1, 1, 0] == 12.5
    assert table.grid[2, 2, 0] == 0.0
    assert not table.grid[3].any() and not table.grid[:, :, 1].any()
    assert table.warnings == []


def test_read_hkl_default_F_fills_only_the_used_ranges():
    table = read_hkl(INPUTS / "test_pattern.hkl", 7.0)
    assert table.grid[2, 2, 0] == 7.0
    assert table.grid[0, 0, 0] == 100.0
    assert not table.grid[3].any() and not table.grid[:, 3].any() and not table.grid[:, :, 1].any()


def test_read_hkl_negative_and_scaled():
    negative = read_hkl(INPUTS / "negative_indices.hkl", 0.0)
    assert (negative.h_min, negative.h_max, negative.count) == (-3, 3, 343)
    assert negative.grid[0, 0, 0] == 28.0  # -3 -3 -3
    assert negative.grid[6, 6, 6] == 28.0  # 3 3 3
    scaled = read_hkl(INPUTS / "scaled.hkl", 0.0)
    assert scaled.count == 64333
    limits = (scaled.h_min, scaled.h_max, scaled.k_min, scaled.k_max, scaled.l_min, scaled.l_max)
    assert limits == (-24, 24, -28, 28, -31, 30)
    assert scaled.grid.shape == (50, 58, 63)
    assert scaled.grid[23 + 24, 15 + 28, -1 + 31] == 23.0  # first line: 23 15 -1 23.00


def test_read_hkl_format_variants(tmp_path):
    stream = read_hkl(write(tmp_path / "a.hkl", "0 0\n0 5.5 1 0\n0 6\n"), 0.0)
    assert stream.count == 2 and stream.grid[1, 0, 0] == 6.0 and stream.grid[0, 0, 0] == 5.5
    touching = read_hkl(write(tmp_path / "b.hkl", "-1-1-1 5\n 1 1 1 2.5e1\n"), 0.0)
    assert touching.grid[0, 0, 0] == 5.0 and touching.grid[2, 2, 2] == 25.0
    with_phase = read_hkl(write(tmp_path / "c.hkl", "0 0 0 10 90\n\n1 0 0 20 180\n"), 0.0)
    assert with_phase.count == 2 and with_phase.grid[1, 0, 0] == 20.0
    repeated = read_hkl(write(tmp_path / "d.hkl", "0 0 0 1\n0 0 0 2\n1 1 1 3\n0 0 0 4\n"), 0.0)
    assert repeated.grid[0, 0, 0] == 4.0
    crlf = read_hkl(write(tmp_path / "e.hkl", "0 0 0 1\r\n1 0 0 2\r\n"), 0.0)
    assert crlf.grid[1, 0, 0] == 2.0


def test_read_hkl_non_integer_index_is_warned(tmp_path):
    table = read_hkl(write(tmp_path / "n.hkl", "0 0 0 1\n1.5 0 0 2\n2.3 0 0 3\n"), 0.0)
    assert (table.h_min, table.h_max) == (0, 2)
    assert table.grid[2, 0, 0] == 3.0  # 1.5 rounds up to 2 but 2.3 comes later
    assert len(table.warnings) == 2
    assert "line 2: non-integer h = 1.5, using 2" in table.warnings[0]


@pytest.mark.parametrize(
    "contents, message",
    [
        ("", ": no h k l F records"),
        ("\n  \n", ": no h k l F records"),
        ("0 0 0 1\n1 0 0 2\n1 x 0 3\n", " line 3: 'x' is not a number"),
        ("0 0 0 1\n1 0 0 2,5\n", " line 2: '2,5' is not a number"),
        ("0 0 0 1\n-1-1-1x 2\n", " line 2: '-1-1-1x' is not a number"),
        ("0 0 0 1\n1 0 0 2\n1 1 0\n\n", " line 3: incomplete last record"),
        ("0 0 0 1\n0 1 0 nan\n", " line 2: F = nan is not a finite number"),
        ("0 0 0 1\n0 1 0 -inf\n", " line 2: F = -inf is not a finite number"),
        ("0 0 0 1\n0 1e40 0 2\n", " line 2: k = 1e+40 is not a usable Miller index"),
    ],
)
def test_read_hkl_errors(tmp_path, contents, message):
    path = write(tmp_path / "bad.hkl", contents)
    with pytest.raises(UserError) as error:
        read_hkl(path, 0.0)
    assert str(error.value).startswith(str(path) + message)
    assert "\n" not in str(error.value)


def test_read_hkl_missing(tmp_path):
    with pytest.raises(UserError, match="cannot read .*none.hkl: No such file"):
        read_hkl(tmp_path / "none.hkl", 0.0)


def test_fdump_round_trip(tmp_path):
    table = read_hkl(write(tmp_path / "t.hkl", "-1 0 2 1.25\n1 -2 3 -7e-3\n0 0 2 9\n"), 3.5)
    write_fdump(tmp_path / "Fdump.bin", table)
    data = (tmp_path / "Fdump.bin").read_bytes()
    assert data.startswith(b"-1 1 -2 0 2 3\n\f")
    assert len(data) == len(b"-1 1 -2 0 2 3\n\f") + 8 * 4 * 4 * 3
    back = read_fdump(tmp_path / "Fdump.bin")
    limits = (back.h_min, back.h_max, back.k_min, back.k_max, back.l_min, back.l_max)
    assert limits == (-1, 1, -2, 0, 2, 3)
    assert back.count == 3 * 3 * 2  # the reference counts grid points, not records
    assert np.array_equal(back.grid, table.grid)
    assert back.grid[0, 2, 0] == 1.25 and back.grid[2, 0, 1] == -7e-3 and back.grid[1, 1, 1] == 3.5


def test_read_fdump_errors(tmp_path):
    table = read_hkl(write(tmp_path / "t.hkl", "0 0 0 1\n1 1 1 2\n"), 0.0)
    write_fdump(tmp_path / "Fdump.bin", table)
    data = (tmp_path / "Fdump.bin").read_bytes()
    (tmp_path / "short.bin").write_bytes(data[:-1])
    with pytest.raises(UserError, match=r"short\.bin: Fdump data is 215 bytes, .* need 216 \(file truncated\)"):
        read_fdump(tmp_path / "short.bin")
    (tmp_path / "text.bin").write_bytes(b"0 1 0 1\n\f")
    with pytest.raises(UserError, match="text.bin: not an Fdump file"):
        read_fdump(tmp_path / "text.bin")
    (tmp_path / "empty.bin").write_bytes(b"")
    with pytest.raises(UserError, match="empty.bin: not an Fdump file"):
        read_fdump(tmp_path / "empty.bin")
    with pytest.raises(UserError, match="cannot read"):
        read_fdump(tmp_path / "absent.bin")


# --- MOSFLM matrix ---------------------------------------------------------------------------


def test_read_mosflm_matrix_golden():
    a_star, b_star, c_star = read_mosflm_matrix(INPUTS / "A.mat")
    assert a_star.tolist() == [-0.02837711, -0.02871390, 0.01050048]
    assert b_star.tolist() == [-0.00305386, 0.01019549, -0.03209440]
    assert c_star.tolist() == [0.02535816, -0.01400049, -0.01036054]


def test_read_mosflm_matrix_ignores_trailing_lines(tmp_path):
    path = write(tmp_path / "m.mat", "1 2 3\n4 5 6\n7 8 9\n0 0 0\n100 100 100 90 90 90\nSYMM P1\n")
    a_star, b_star, c_star = read_mosflm_matrix(path)
    assert a_star.tolist() == [1, 4, 7] and b_star.tolist() == [2, 5, 8] and c_star.tolist() == [3, 6, 9]


@pytest.mark.parametrize(
    "contents, message",
    [
        ("", "needs 9 numbers (3 rows of 3), found 0"),
        ("1 2 3\n4 5 6\n7 8\n", "found 8"),
        ("1 2 3\n4 five 6\n7 8 9\n", "matrix element 5 is 'five'"),
    ],
)
def test_read_mosflm_matrix_errors(tmp_path, contents, message):
    path = write(tmp_path / "bad.mat", contents)
    with pytest.raises(UserError, match=re.escape(f"{path}: ") + ".*" + re.escape(message)):
        read_mosflm_matrix(path)


def test_read_mosflm_matrix_missing(tmp_path):
    with pytest.raises(UserError, match="cannot read"):
        read_mosflm_matrix(tmp_path / "none.mat")


# --- text columns ----------------------------------------------------------------------------


def test_read_columns_sources():
    sources = read_columns(INPUTS / "sources.txt", 5)
    assert sources.shape == (3, 5)
    assert sources[1].tolist() == [-10.0, 0.02, 0.0, 0.5, 6.2e-10]
    assert sources[2, 4] == 6.0e-10


def test_read_columns_reference_semantics(tmp_path):
    text = "1,2;3\n\n  \t \n4:5!6 7 8\n9\n1e3 abc\n2x 3\n-5\r\n6 7"
    rows = read_columns(write(tmp_path / "c.txt", text), 3)
    expected = [
        [1, 2, 3],
        [4, 5, 6],  # extra columns ignored
        [9, math.nan, math.nan],  # missing trailing values
        [1000, 0, 0],  # a word reads as 0 and, as in the reference, zeroes the rest
        [2, 3, math.nan],  # letters glued to a number are skipped
        [-5, math.nan, math.nan],  # CRLF line
        [6, 7, math.nan],  # last line without newline
    ]
    np.testing.assert_array_equal(rows, np.array(expected))


def test_read_columns_errors(tmp_path):
    with pytest.raises(UserError, match="empty.txt: no data rows"):
        read_columns(write(tmp_path / "empty.txt", ""), 2)
    with pytest.raises(UserError, match="blank.txt: no data rows"):
        read_columns(write(tmp_path / "blank.txt", "\n ,, \n\n"), 2)
    with pytest.raises(UserError, match="cannot read .*none.txt"):
        read_columns(tmp_path / "none.txt", 2)


# --- float images and PGM --------------------------------------------------------------------


def test_float_image_raw_layout_and_round_trip(tmp_path):
    image = np.array([[1.0, 2.0, 3.0], [4.0, 5.5, -6.0]], dtype=np.float32)
    write_float_image(tmp_path / "f.bin", image)
    assert (tmp_path / "f.bin").read_bytes() == struct.pack("<6f", 1, 2, 3, 4, 5.5, -6)
    assert np.array_equal(read_float_image(tmp_path / "f.bin", (2, 3)), image)


@pytest.mark.parametrize("name", ["f.tif", "f.TIFF"])
def test_float_image_tiff_round_trip(tmp_path, name):
    image = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    write_float_image(tmp_path / name, image)
    back = read_float_image(tmp_path / name, (3, 4))
    assert back.dtype == np.float32 and np.array_equal(back, image)
    with pytest.raises(UserError, match=r"image is \(4, 3\) pixels \(fast, slow\), expected \(3, 4\)"):
        read_float_image(tmp_path / name, (4, 3))


def test_read_float_image_golden_gz():
    case = manifest()["simple_cubic"]
    image = read_float_image(CASES / "simple_cubic" / "float.bin.gz", tuple(case["shape"]))
    assert image.dtype == np.float32 and image.shape == (256, 256)
    assert float(image.max()) == case["max"]
    assert math.isclose(float(image.sum(dtype=np.float64)), case["sum"], rel_tol=1e-9)


def test_read_float_image_errors(tmp_path):
    (tmp_path / "short.bin").write_bytes(bytes(15))
    with pytest.raises(UserError, match=r"short.bin: 15 bytes, a 2x2 float image has 16"):
        read_float_image(tmp_path / "short.bin", (2, 2))
    (tmp_path / "bad.bin.gz").write_bytes(b"not gzip at all")
    with pytest.raises(UserError, match="cannot read .*bad.bin.gz"):
        read_float_image(tmp_path / "bad.bin.gz", (2, 2))
    (tmp_path / "cut.bin.gz").write_bytes(gzip.compress(bytes(64))[:-10])
    with pytest.raises(UserError, match="cannot read .*cut.bin.gz"):
        read_float_image(tmp_path / "cut.bin.gz", (4, 4))
    (tmp_path / "bad.tif").write_bytes(b"II*\0garbage")
    with pytest.raises(UserError, match="bad.tif: no 2-D image in it"):
        read_float_image(tmp_path / "bad.tif", (2, 2))
    with pytest.raises(UserError, match="cannot read .*none.bin"):
        read_float_image(tmp_path / "none.bin", (2, 2))


def test_write_float_image_unwritable(tmp_path):
    with pytest.raises(RuntimeFailure, match="cannot write"):
        write_float_image(tmp_path / "missing" / "f.bin", np.zeros((2, 2), np.float32))


def test_pgm_bytes_conversion_and_roi():
    image = np.array([[0.0, 10.0, 100.0], [84.9, 85.0, 1e9]], dtype=np.float32)
    assert pgm_bytes(image, 3.0).tolist() == [[0, 30, 255], [254, 255, 255]]
    assert pgm_bytes(image, 3.0, roi=(1, 2, 1, 1)).tolist() == [[0, 0, 0], [0, 255, 255]]


@pytest.mark.parametrize("case", ["simple_cubic", "pgm_scale"])
def test_pgm_reproduces_golden(tmp_path, case):
    info = manifest()[case]
    height, width = info["shape"]
    floats = read_float_image(CASES / case / "float.bin.gz", (height, width))
    scale = float(re.search(r"pgm_scale = (\S+)", (CASES / case / "stdout.txt").read_text()).group(1))
    golden = (CASES / case / "image.pgm").read_bytes()
    converted = pgm_bytes(floats, scale, roi=(0, width, 0, height))
    assert golden[-height * width :] == converted.tobytes()
    write_pgm(tmp_path / "image.pgm", converted, scale)
    assert (tmp_path / "image.pgm").read_bytes() == golden
    assert golden.startswith(f"P5\n{width} {height}\n# pixels scaled by ".encode())
