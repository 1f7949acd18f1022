from __future__ import annotations

import sys

from norce.simulator.cli import main

sys.exit(main())
