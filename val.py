"""COCO AP of trained checkpoints at every IoU threshold: see boxloss/cli/val.py (``--help`` lists the keys)."""
import sys

from boxloss.cli.val import main

if __name__ == "__main__":
    sys.exit(main())
