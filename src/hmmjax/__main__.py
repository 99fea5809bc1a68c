"""``python -m hmmjax``: the same as the ``hmmjax`` command."""

import sys

from hmmjax.cli import main

sys.exit(main())
