"""Shared by the reliability suite: how many examples each fuzzed input kind gets.

``make test`` runs a fast sample; ``make faults`` sets ``DEPLOYOPS_TEST_FUZZ_EXAMPLES=500``.
(Read at import, before the autouse fixture clears ``DEPLOYOPS_*`` for the tests themselves.)
"""

from __future__ import annotations

import os

FUZZ_EXAMPLES = int(os.environ.get("DEPLOYOPS_TEST_FUZZ_EXAMPLES", "60"))
