"""`python -m crlm ...`: the `crlm` command (crlm.cli)."""

import sys

from crlm.cli import main

sys.exit(main())
