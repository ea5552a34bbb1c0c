"""`python -m corrlog`: the same as the `corrlog` command."""

import sys

from corrlog.entry import main

sys.exit(main())
