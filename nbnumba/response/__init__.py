"""The detector response (noisify's physics): photon noise, flicker, calibration error,
point-spread function, gain, ADC offset and read-out noise applied to any float image; the
reference's random numbers (ran1, gaussdev, poidev, mosaic rotations) that it and the crystal
draw from; noisify's files and printed lines.

May import: runtime, io.
"""
