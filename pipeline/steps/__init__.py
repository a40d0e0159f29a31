"""Each pipeline step's work as a plain function: read from --out, decide, write the step's files.

Between ``core``/``io``/``render`` below and ``commands`` above: a step returns its record (or the
path it wrote) and never parses options or prints; its command parses the options, calls it and
prints. Tests and benches call the functions here directly.
"""
