"""Slots of the flat arrays handed to the amorphous-scattering kernels (CPU and CUDA alike)."""

# real-valued parameters
G_PIX0 = 0  # 3: detector origin (m)
G_FDET = 3  # 3: fast axis
G_SDET = 6  # 3: slow axis
G_BEAM = 9  # 3: beam direction (curved detector)
G_PIXEL = 12  # pixel size (m)
G_SUBPIXEL = 13  # pixel size / oversample (m)
G_DISTANCE = 14  # (m)
G_CLOSE = 15  # close distance (m)
G_KAHN = 16  # Kahn polarization factor
G_RE2 = 17  # Thomson cross section (m^2)
G_FLUENCE = 18  # photons/m^2
G_MOLECULES = 19  # molecules in the illuminated sample
G_STEPS = 20  # sources * oversample^2
N_GEO = 21

# integer parameters
I_FPIXELS = 0
I_SPIXELS = 1
I_OVERSAMPLE = 2
I_SOURCES = 3
I_CURVED = 4
I_POINT_PIXEL = 5
I_NOPOLAR = 6
I_FIX_SPLINE = 7  # 1: the interpolated F stays between its two table neighbours
I_FMAP = 8  # 1: the image holds F instead of photons
I_ROI_XMIN = 9
I_ROI_XMAX = 10
I_ROI_YMIN = 11
I_ROI_YMAX = 12
N_INT = 13

# columns of the source table
S_DIR = 0  # 3: unit vector from the sample toward the source
S_LAMBDA = 3  # wavelength (m)
S_B = 4  # 3: polarization basis B of the source (physics.polarization_basis)
S_E = 7  # 3: polarization basis E
S_WEIGHT = 10  # the source's intensity weight
N_SOURCE = 11
