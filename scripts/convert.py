"""Convert a detection dataset to YOLO format: see boxloss/cli/convert.py (``--help`` lists the keys)."""
import sys

from boxloss.cli.convert import main

if __name__ == "__main__":
    sys.exit(main())
