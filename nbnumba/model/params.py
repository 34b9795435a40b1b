"""Everything a run is configured with, in SI units, with the reference's defaults.

NaN and negative values mean "not given" exactly where the reference uses them that way: the
setup code fills them in with the reference's auto-selection rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field

NAN = float("nan")


@dataclass
class Params:
    argv: list = field(default_factory=list)

    # crystal
    Na: float = 1.0
    Nb: float = 1.0
    Nc: float = 1.0
    user_cell: bool = False
    cell: list = field(default_factory=lambda: [0.0, 0.0, 0.0, 0.0, 0.0, 0.0])  # A, A, A, rad x3
    misset: object = None  # None, "random" or (rotx, roty, rotz) in rad
    sample_x: float = 0.0
    sample_y: float = 0.0
    sample_z: float = 0.0
    density: float = 1.0e6
    molecular_weight: float = 18.0
    xtal_shape: str = "SQUARE"
    fudge: float = 1.0
    mosaic_spread: float = -1.0
    mosaic_domains: int = -1
    mosaic_seed: int = -12345678
    misset_seed: int | None = None  # defaults to the noise seed

    # detector
    pixel_size: float = 0.1e-3
    fpixels: int = 0
    spixels: int = 0
    distance: float = 100.0e-3
    close_distance: float = NAN
    detsize_f: float = 102.4e-3
    detsize_s: float = 102.4e-3
    detector_mu: float = -1.0
    detector_thick: float = 0.0
    detector_thickstep: float = -1.0
    detector_thicksteps: int = -1
    fdet_vector: list = field(default_factory=lambda: [0.0, 0.0, 1.0])
    sdet_vector: list = field(default_factory=lambda: [0.0, -1.0, 0.0])
    odet_vector: list = field(default_factory=lambda: [1.0, 0.0, 0.0])
    pix0_user: list | None = None
    detector_rotx: float = 0.0
    detector_roty: float = 0.0
    detector_rotz: float = 0.0
    twotheta_axis: list = field(default_factory=lambda: [0.0, 1.0, 0.0])
    detector_twotheta: float = 0.0
    pivot: str = "BEAM"
    convention: str = "MOSFLM"
    curved_detector: bool = False
    point_pixel: bool = False
    Xbeam: float = NAN
    Ybeam: float = NAN
    Xclose: float = NAN
    Yclose: float = NAN
    ORGX: float = NAN
    ORGY: float = NAN
    roi: list | None = None  # xmin xmax ymin ymax, inclusive

    # beam
    beam_vector: list = field(default_factory=lambda: [1.0, 0.0, 0.0])
    polar_vector: list = field(default_factory=lambda: [0.0, 0.0, 1.0])
    spindle_vector: list = field(default_factory=lambda: [0.0, 0.0, 1.0])
    lambda0: float = 1.0e-10
    dispersion: float = 0.0
    dispstep: float = -1.0
    dispsteps: int = -1
    hdivrange: float = -1.0
    hdivstep: float = -1.0
    hdivsteps: int = -1
    vdivrange: float = -1.0
    vdivstep: float = -1.0
    vdivsteps: int = -1
    round_div: bool = True
    source_distance: float = 10.0
    fluence: float = 125932015286227086360700780544.0
    flux: float = 0.0
    exposure: float = 1.0
    beamsize: float = 1e-4
    polarization: float = 0.0
    nopolar: bool = False
    coherent: bool = False

    # sampling
    oversample: int = -1
    oversample_thick: bool = False
    oversample_polar: bool = False
    oversample_omega: bool = False
    phi0: float = 0.0
    phistep: float = -1.0
    phisteps: int = -1
    osc: float = -1.0
    dmin: float = 0.0
    water_size: float = 0.0
    interpolate: int = 2  # 2: decide from N

    # structure factors and other inputs
    hklfile: str | None = None
    matfile: str | None = None
    imgfile: str | None = None
    maskfile: str | None = None
    sourcefile: str | None = None
    stol_file: str | None = None
    stol_file_mult: float = 1.0e10
    stolout_file: str | None = None
    default_F: float = 0.0

    # outputs
    floatfile: str = "floatimage.bin"
    intfile: str = "intimage.img"
    pgmfile: str = "image.pgm"
    noisefile: str = "noiseimage.img"
    nexusfile: str | None = None  # NXmx file of the detector counts (nbnumba's -nexus)
    # the amorphous background (-bg_*) and the detector response (-readout, -psf, ...), SI units
    bg_stol_file: str | None = None
    bg_stol_unit: float = 1.0e10  # the table's sin(theta)/lambda unit to 1/m (-bg_4stol, -bg_Q)
    bg_fix_spline: bool = False
    bg_thick: float = 1e-4
    bg_density: float = 1.0e6
    bg_MW: float = 18.0
    response: bool = False
    readout_noise: float = 0.0
    flicker_noise: float = 0.0
    calibration_noise: float = 0.03
    calib_seed: int = 123456789
    psf: str | None = None
    psf_fwhm: float = 46e-6
    psf_radius: int = 0
    gain: float = 1.0
    write_pgm: bool = True
    calculate_noise: bool = True
    intfile_scale: float = 0.0
    pgm_scale: float = 0.0
    adc_offset: float = 40.0
    seed: int | None = None  # None: from the clock, as the reference
    printout: bool = False
    printout_fpixel: int = -1
    printout_spixel: int = -1
    trace_spixel: int = -1
    trace_fpixel: int = -1
    progress: bool = True

    # nbnumba
    precision: str = "double"
    device: str = "cpu"
    nthreads: int = 0
    fix_phi0: bool = False
    fix_pix0: bool = False
    fix_pix0_mm: bool = False
    fix_misset_random: bool = False
    fix_twotheta_axis: bool = False
    fix_smv_keys: bool = False
    force: bool = False  # render even past the work limits (nbnumba.estimate)
    slips: list = field(default_factory=list)  # values that look like unit slips: (short, warning line)
