"""Re-evaluate a benchmark's finished runs without retraining: ``scripts/benchmark.py rescore`` under its old name
(see boxloss/benchmark/rescore.py; ``--help`` lists the keys)."""
import sys

from boxloss.cli.benchmark import rescore_main

if __name__ == "__main__":
    sys.exit(rescore_main(sys.argv[1:], prog="rescore.py", launcher=["python", "scripts/rescore.py"]))
