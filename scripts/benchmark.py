"""Benchmark box losses over configs x seeds: see boxloss/cli/benchmark.py (``--help`` lists the keys)."""
import sys

from boxloss.cli.benchmark import main

if __name__ == "__main__":
    sys.exit(main())
