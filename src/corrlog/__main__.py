"""`python -m corrlog`: the same as the `corrlog` command."""

import sys

from corrlog.cli import main

sys.exit(main())
