"""Slots of the flat parameter arrays handed to every kernel (CPU, CUDA and trace alike).

Kernels take two flat arrays instead of dozens of scalars so that all backends share one
signature; these names say what each slot holds.
"""

# real-valued parameters (float64 or float32 per precision)
G_PIX0 = 0  # 3: detector origin (m)
G_FDET = 3  # 3: fast axis
G_SDET = 6  # 3: slow axis
G_ODET = 9  # 3: detector normal
G_BEAM = 12  # 3: beam direction (curved detector)
G_POLAR = 15  # 3: E-vector of the incident beam
G_PIXEL = 18  # pixel size (m)
G_SUBPIXEL = 19  # pixel size / oversample (m)
G_DISTANCE = 20  # (m)
G_CLOSE = 21  # close distance (m)
G_THICKSTEP = 22  # sensor layer thickness (m)
G_MU = 23  # sensor attenuation (1/m)
G_THICK = 24  # sensor thickness (m)
G_KAHN = 25  # Kahn polarization factor
G_RE2_FLUENCE = 26  # r_e^2 * fluence (m^2 * photons/m^2)
G_STEPS = 27  # sources * mosaic domains * phi steps * oversample^2
G_I_BG = 28  # water background added to each pixel's sum
G_DMIN = 29  # resolution cut (m)
G_FUDGE = 30
G_NA = 31
G_NB = 32
G_NC = 33
G_DEFAULT_F = 34
G_WATER = 35  # water droplet size (m)
N_GEO = 36

# integer parameters
I_FPIXELS = 0
I_SPIXELS = 1
I_OVERSAMPLE = 2
I_THICKSTEPS = 3
I_SOURCES = 4
I_PHISTEPS = 5
I_MOSAIC = 6
I_OVERSAMPLE_THICK = 7
I_OVERSAMPLE_POLAR = 8
I_OVERSAMPLE_OMEGA = 9
I_POINT_PIXEL = 10
I_CURVED = 11
I_NOPOLAR = 12
I_SHAPE = 13  # see SHAPES
# the structure-factor table: its first h and its span (last h - first h; -1 when there is no
# table), for k and l alike.  The spans are set up on the host so that a GPU thread reads them from
# its parameters where it needs them, instead of holding the differences in registers
I_H_MIN = 14
I_H_SPAN = 15
I_K_MIN = 16
I_K_SPAN = 17
I_L_MIN = 18
I_L_SPAN = 19
I_ROI_XMIN = 20
I_ROI_XMAX = 21
I_ROI_YMIN = 22
I_ROI_YMAX = 23
I_HAS_MASK = 24
I_INTERPOLATE = 25
I_FIRST_PIXEL = 26  # scan index of the pixel whose first phi pass starts from the unrotated lattice
I_INTERP_UNTIL = 27  # scan index after which interpolation is off (the reference switches it off mid-scan)
I_RENDER_FROM = 28  # render scan indices in [from, to)
I_RENDER_TO = 29
N_INT = 30

SHAPES = {"SQUARE": 0, "ROUND": 1, "GAUSS": 2, "TOPHAT": 3}

# rows of the trace buffer: [code, v0, v1, v2, v3, v4]
TRACE_WIDTH = 6
TR_POS = 1  # pixel position xyz (m), distance R (m), solid angle (sr)
TR_DIFFRACTED = 2  # diffracted unit vector
TR_INCIDENT = 3  # incident unit vector, wavelength (m)
TR_SCATTERING = 4  # scattering vector (1/m)
TR_A = 5  # rotated real-space axes (m)
TR_B = 6
TR_C = 7
TR_HKL = 8  # fractional h k l
TR_HKL0 = 9  # rounded h k l
TR_FLATT = 10  # F_latt_a, F_latt_b, F_latt_c, F_latt
TR_PHI = 11  # phi_tic, phi (rad), k, F_latt_b, F_latt
TR_FCELL = 12
TR_FINAL = 13  # I before scaling, capture fraction, polarization, solid angle, cos 2theta
# The last rows of the trace buffer hold values each overwritten as the pixel goes on, so that they
# end as the pixel's last evaluation left them (what -printout reports): row index -slot.
TL_Q = 1  # scattering vector (1/m) of the last source evaluated
TL_HKL = 2  # fractional h k l, F_latt of the last evaluation
TL_HKL0 = 3  # rounded h k l of the last evaluation
TL_FCELL = 4  # the last F_cell computed (the reference skips it where F_latt is 0)
TL_A = 5  # rotated real-space axes (m) of the last evaluation
TL_B = 6
TL_C = 7
TL_LEFT = 8  # h k l and h0 k0 of the first evaluation whose interpolation left the table
TL_LEFT0 = 9  # l0
TRACE_LAST = 9  # rows kept for these at the end of the buffer

# a strip is a run of up to STRIP neighbouring pixels of one row rendered together: the loops over
# its pixels have no dependence between iterations, so the CPU runs several pixels per instruction
STRIP = 128

# rows of the per-pixel state of a strip (one column per pixel, in the render precision)
P_DX, P_DY, P_DZ = 0, 1, 2  # diffracted unit vector of the current sub-pixel
P_QX, P_QY, P_QZ = 3, 4, 5  # scattering vector of the current sub-pixel and source (1/m)
P_KEEP = 6  # 1 when the current source is inside the resolution limit
P_I = 7  # the sum of intensities
P_OMEGA, P_CAPTURE, P_POLAR = 8, 9, 10  # latest solid angle, capture fraction and polarization
P_INTERPOLATE = 11  # 1 while this pixel interpolates structure factors
P_VALUE = 12  # the pixel's value once rendered
P_X, P_Y, P_Z = 13, 14, 15  # position of the current sub-pixel (m)
P_R = 16  # its distance from the sample (m)
N_STATE = 17

# rows of the per-pixel tallies of a strip (float64 in every precision)
T_OMEGA_SUM = 0  # sum of the solid angles of the sub-pixels
T_LEFT_TABLE = 1  # 1 when an interpolation left the table (it used default_F; later pixels must not interpolate)
T_RAN_PHI = 2  # 1 when some phi pass ran (the lattice carried to the next pixel is rotated)
N_TALLY = 3

# rows of the lattice scratch of a strip: per pixel, one (phi step, mosaic domain) pair
S_H, S_K, S_L, S_H0, S_K0, S_L0, S_FLATT, S_FA, S_FB, S_FC = range(10)
S_SA, S_SB, S_SC = 10, 11, 12  # the parallelepiped's sincg slopes d f_a/dh, d f_b/dk, d f_c/dl (derivative passes)
S_FCELL = 13  # the structure factor of the pixel's latest added term
N_SCRATCH = 14
