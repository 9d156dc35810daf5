"""`python -m tunesmith.sweep.worker SPEC.json INDEX`: one more process running trials of a sweep."""

from __future__ import annotations

import json
import sys

from tunesmith.sweep.study import from_json, run_worker


def main(argv: list[str]) -> int:
    with open(argv[0], encoding="utf-8") as f:
        sweep = from_json(json.load(f))
    try:
        run_worker(sweep, int(argv[1]) if len(argv) > 1 else 1)
    except KeyboardInterrupt:  # Ctrl-C reaches every worker; each saves its trial and stops
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
