"""`python -m tunesmith.sweep.worker SPEC.json INDEX`: one more process running trials of a sweep."""

from __future__ import annotations

import json
import sys

from tunesmith.sweep.study import from_json, run_worker
from tunesmith.utils.progress import RichReporter, use_reporter


def main(argv: list[str]) -> int:
    with open(argv[0], encoding="utf-8") as f:
        sweep = from_json(json.load(f))
    try:
        run_worker(sweep, int(argv[1]) if len(argv) > 1 else 1)
    except KeyboardInterrupt:  # Ctrl-C reaches every worker; each saves its trial and stops
        return 130
    return 0


if __name__ == "__main__":  # a front end, as the CLI: trial notes show on stderr
    with use_reporter(RichReporter()):
        code = main(sys.argv[1:])
    sys.exit(code)
