"""The hub's watcher: the process Pebble runs in the workload container to wake the charm.

It watches Spark service accounts and the hub's own Secrets across all namespaces and, when
something happened that the charm must act on, records a Pebble custom notice (`NOTICE_KEY`),
which Juju turns into a `pebble-custom-notice` event and the charm into one pass.

The package is copied into the workload container (`/opt/hub-watcher/watcher/`) and run there
with `python3 -m watcher`, so it is **standard library only** and imports nothing from the
charm (not even `core`), and it keeps to Python 3.10 (the workload image is Ubuntu 22.04).
See `docs/explanation/watcher.md`.
"""

NOTICE_KEY = "canonical.com/spark-integration-hub/changed"
"""The key of the custom notice; the charm compares `event.notice.key` with it."""
