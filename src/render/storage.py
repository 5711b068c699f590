"""The object-store rule: several stores may be related, exactly one holds Spark's locations.

This module owns the decision of which related object store provides the *locations* Spark
writes to — event logs, the history server's log directory, the upload path of
`spark-submit`, and the SQL warehouse — when more than one store is related:

* every related store contributes its own credentials, so jobs can read and write
  `s3a://`, `abfs[s]://`/`wasb[s]://` and `gs://` paths side by side;
* exactly one store, the *primary*, contributes the location properties (`LOCATION_KEYS`);
* the primary is the first **related** store in the fixed order `STORE_PRIORITY`:
  S3, then Azure, then GCS. "Related" means the endpoint has a relation, whatever the state of
  its data: while the S3 relation is incomplete or invalid, Azure does not take the locations
  over (the hub is waiting or blocked anyway), so event logs never flip between stores.

This is not the merge precedence of `core.properties.Source` (where GCS would win over S3 for a
shared key): the location keys are removed from every non-primary store before the merge, so
the merge never has to choose between stores.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from core.inputs import SourceResult
from core.properties import Contribution, Source

STORE_PRIORITY: tuple[Source, ...] = (Source.S3, Source.AZURE, Source.GCS)
"""Object stores, the primary first: S3 > Azure > GCS."""

LOCATION_KEYS: frozenset[str] = frozenset(
    {
        "spark.eventLog.enabled",
        "spark.eventLog.dir",
        "spark.history.fs.logDirectory",
        "spark.kubernetes.file.upload.path",
        "spark.sql.warehouse.dir",
    }
)
"""The properties only the primary store provides."""


def locations(base: str, path: str) -> dict[str, str]:
    """The location properties of a store whose bucket/container root URI is `base`.

    Args:
        base: the root of the bucket or container, ending with `/` (e.g. `s3a://bucket/`).
        path: the provider's `path` inside it (no leading or trailing `/`), may be empty.

    Returns:
        Event logs (and the history server's directory) under `path`, the upload path at the
        root, and the warehouse in `warehouse/` at the root — the reference charm's layout.
    """
    event_logs = f"{base}{path}"
    return {
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": event_logs,
        "spark.history.fs.logDirectory": event_logs,
        "spark.kubernetes.file.upload.path": base,
        "spark.sql.warehouse.dir": f"{base}warehouse",
    }


def primary_store(stores: Mapping[Source, SourceResult]) -> Source | None:
    """The store that provides the locations: the first related one in `STORE_PRIORITY`."""
    return next((store for store in STORE_PRIORITY if stores.get(store) is not None), None)


def apply_store_priority(stores: Mapping[Source, SourceResult]) -> dict[Source, SourceResult]:
    """Remove the location properties from every store but the primary.

    Args:
        stores: each object store's result for this pass (absent or None: not related).

    Returns:
        The same results, where every non-primary `Contribution` has lost `LOCATION_KEYS`.
    """
    primary = primary_store(stores)
    result: dict[Source, SourceResult] = {}
    for store, outcome in stores.items():
        if store != primary and isinstance(outcome, Contribution):
            outcome = dataclasses.replace(
                outcome,
                properties={k: v for k, v in outcome.properties.items() if k not in LOCATION_KEYS},
            )
        result[store] = outcome
    return result
