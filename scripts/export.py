"""Export a trained checkpoint with ultralytics' exporter: see boxloss/cli/export.py (``--help`` lists the keys)."""
import sys

from boxloss.cli.export import main

if __name__ == "__main__":
    sys.exit(main())
