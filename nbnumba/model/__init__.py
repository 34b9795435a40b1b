"""From flags to the experiment in SI units, for every program: the flag tables and parsers
(nanoBragg's, nonBragg's, noisify's), the parameters, the sampling rules, beam, crystal, detector,
the amorphous sample and its table, the work estimate, and the `Simulation` and `NonBragg`
builders.  Host-side numpy; nothing here renders or prints a report.

May import: physics (the geometry compiled for the host), response (its random numbers and
defaults), runtime, io.
"""
