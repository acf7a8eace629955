"""`python -m hf_ser.cli ...`: the same as the `hf-ser` console script."""

from __future__ import annotations

import sys

from . import main

if __name__ == "__main__":  # importing the module (e.g. walking the package) runs nothing
    sys.exit(main())
