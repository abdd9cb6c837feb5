"""``python -m broker`` runs the ``carebroker`` command."""

import sys

from broker.cli import main

sys.exit(main())
