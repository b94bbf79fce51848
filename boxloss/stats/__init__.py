"""Statistics over a benchmark's result records: summaries over seeds, paired differences against a baseline, the
report and its plots. Reads records; runs nothing (the running is :mod:`boxloss.benchmark`'s)."""
