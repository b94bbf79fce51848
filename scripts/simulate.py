"""The DIoU paper's simulation experiment: see boxloss/cli/simulate.py (``--help`` lists the keys)."""
import sys

from boxloss.cli.simulate import main

if __name__ == "__main__":
    sys.exit(main())
