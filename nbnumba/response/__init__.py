"""The detector response (noisify's own behaviour): photon noise, flicker, calibration error,
point-spread function, gain, ADC offset and read-out noise applied to any float image; noisify's
options and files; the statistics and output images every command writes.

May import: model, physics, runtime, io.
"""
