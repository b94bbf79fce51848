"""Re-evaluate a benchmark's finished runs without retraining: see boxloss/benchmark/rescore.py (``--help``)."""
import sys

from boxloss.benchmark import rescore
from boxloss.keyvalues import format_help, run_cli

if __name__ == "__main__":
    sys.exit(run_cli("rescore.py", lambda: format_help(rescore.__doc__, rescore.KEYS), rescore.main))
