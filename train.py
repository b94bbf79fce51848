"""Train YOLO with the box loss chosen by name: see boxloss/cli/train.py (``--help`` lists the keys)."""
import sys

from boxloss.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
