"""A resumable benchmark: a matrix of experiment configs x seeds, each trained then evaluated, and a summary.

- :mod:`.plan`: the plan (every argument checked before anything is written): one run per (config, seed).
- :mod:`.results`: the result records written, which runs are finished, which are still to do.
- :mod:`.matrix`: running the pending runs through a runner callable, each result written when it is done.
- :mod:`.runner`: the real runner (``boxloss.cli.train`` and ``boxloss.cli.val`` in child processes, logs teed,
  epochs forwarded).
- :mod:`.execute`: a plan's engine (one run at a time, ``jobs=N`` on this machine, or :mod:`.ray_engine`), under
  :mod:`.cuda_mps` if asked, and running a whole plan from the library.
- :mod:`.status`: ``benchmark.py status``, what is finished and what N more minutes would add.
- :mod:`.lock`: one benchmark (or ``summarize``, or ``rescore``) writing into a folder at a time.
- :mod:`.rescore`: finished runs evaluated again without retraining (other NMS, TIDE, per-image matches).

The statistics and the report are :mod:`boxloss.stats`', read from the result records alone. The command line is
``boxloss.cli.benchmark`` (``scripts/benchmark.py``).
"""
