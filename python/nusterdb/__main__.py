"""``python -m nusterdb``: the command line (see :mod:`nusterdb.cli`)."""

from __future__ import annotations

import sys

from nusterdb.cli import main

if __name__ == "__main__":
    sys.exit(main())
