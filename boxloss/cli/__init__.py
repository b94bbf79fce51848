"""The command-line entry points, inside the package so that an installed boxloss has them too.

Each module has ``main(argv=None) -> int`` and runs with ``python -m boxloss.cli.<name>``; they are also the
console scripts ``boxloss-train``, ``boxloss-val``, ``boxloss-export``, ``boxloss-convert``, ``boxloss-benchmark``
and ``boxloss-simulate``, and the repository's ``train.py``, ``val.py`` and ``scripts/*.py`` are five-line shims
onto them. Every ``key=value`` command parses through :mod:`boxloss.keyvalues`: the same bad key gets the same
one-line error and exit status 2 everywhere.
"""
