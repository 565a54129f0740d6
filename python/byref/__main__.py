"""``python -m byref``: the same as the ``byref`` command."""

import sys

from .cli import main

sys.exit(main())
