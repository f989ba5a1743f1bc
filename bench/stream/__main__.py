"""``python -m bench.stream``: stage 1 against a bare aiokafka pass-through."""

import sys

from bench.stream.run import main

sys.exit(main())
