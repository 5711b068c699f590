"""`python3 -m watcher` runs the service; `python3 -m watcher --check` is its health check."""

import sys

from watcher.service import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
