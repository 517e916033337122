"""`python -m sfbroker_client` runs the `sfbroker` command."""

import sys

from sfbroker_client.cli import main

sys.exit(main())
