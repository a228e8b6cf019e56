"""`make bench`: throughput figures, each next to the raw primitive it is bounded by."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import mid, signing, updatesets


def main() -> int:
    signing.run(print)
    updatesets.run(print)
    mid.run(print)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
