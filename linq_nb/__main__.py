"""``python -m linq_nb``: the same as the ``linq-nb`` command."""

import sys

from .cli import main

sys.exit(main())
