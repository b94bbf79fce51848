"""The command-line entry points, inside the package so that an installed boxloss has them too.

Each module has ``main(argv=None) -> int`` and runs with ``python -m boxloss.cli.<name>``; they are also the
console scripts ``boxloss-train``, ``boxloss-val``, ``boxloss-export``, ``boxloss-convert``, ``boxloss-benchmark``
and ``boxloss-simulate``, and the repository's ``train.py``, ``val.py`` and ``scripts/{export,convert,benchmark,
simulate}.py`` are shims of a few lines onto them (the other ``scripts/`` are measurements of their own). Every
command parses ``key=value`` through :mod:`boxloss.keyvalues`: the same bad key, or a ``--flag``, gets the same
one-line error and exit status 2 everywhere.
"""
