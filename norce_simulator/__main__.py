from __future__ import annotations

import sys

from norce_simulator.cli import main

sys.exit(main())
