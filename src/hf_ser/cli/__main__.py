"""`python -m hf_ser.cli ...`: the same as the `hf-ser` console script."""

from __future__ import annotations

import sys

from . import main

sys.exit(main())
