"""From flags to the experiment in SI units: the flag tables and parser, the parameters, the
sampling rules, beam, crystal, detector, the reference's random numbers, the work estimate and
the `Simulation` builder.  Host-side numpy; nothing here renders or prints a report.

May import: physics (the geometry compiled for the host), runtime, io.
"""
