"""A resumable benchmark: a matrix of experiment configs x seeds, each trained then evaluated, and a summary.

- :mod:`boxloss.benchmark.matrix`: the plan (every argument checked before anything is written), which runs are
  finished (their result JSON exists with the same settings), running the rest one at a time through a runner
  callable, and the real runner (``train.py`` and ``val.py`` in subprocesses, logs teed, epochs forwarded).
- :mod:`boxloss.benchmark.summary`: statistics over seeds (mean, sample std, paired differences against a
  baseline), the markdown report and the AP-vs-IoU plot, all read from the result JSONs alone.

The command line is ``scripts/benchmark.py``.
"""
