"""Readers of the object-storage relations, through `object-storage-charmlib`.

This module owns reading `s3-credentials` (`S3Requirer`), `azure-storage-credentials`
(`AzureStorageRequirer`) and `gcs-credentials` (`GCSRequirer`): the library resolves the
provider's databag and its Juju secret into one mapping, `core.connections` types it, and
`render.*` turns it into properties. A secret the library cannot read yet (not granted, not
created) means the provider has not delivered: `Incomplete`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ops
from object_storage import AzureStorageRequirer, GCSRequirer, S3Requirer
from object_storage.exceptions import DataInterfacesError

from core.connections import AzureConnection, GCSConnection, S3Connection
from core.inputs import Incomplete, Invalid, SourceResult
from core.properties import Contribution, Source
from render.azure import render_azure
from render.gcs import render_gcs
from render.s3 import TrustStore, render_s3
from sources.common import ModelT, evaluate, provider_name

logger = logging.getLogger(__name__)

Requirer = S3Requirer | AzureStorageRequirer | GCSRequirer


def connection_info(
    requirer: Requirer, relation: ops.Relation, endpoint: str
) -> Mapping[str, Any] | Incomplete:
    """The provider's data for `relation`, secrets resolved, as the library returns it."""
    try:
        return dict(requirer.get_storage_connection_info(relation))
    except (ops.ModelError, DataInterfacesError) as error:
        logger.info("%s: credentials not readable yet (%s)", endpoint, type(error).__name__)
        return Incomplete(
            endpoint,
            f"the credentials secret of {provider_name(relation)} is not readable yet",
        )


def read_s3(
    requirer: S3Requirer,
    relation: ops.Relation | None,
    system_cas: Callable[[], Sequence[str]] = tuple,
) -> tuple[SourceResult, TrustStore | None]:
    """The S3 contribution, and the truststore for the provider's `tls-ca-chain` if any.

    Args:
        requirer: the library object of `s3-credentials`.
        relation: the active relation, or None when there is none.
        system_cas: gives the PEM trust anchors to add to a truststore (called only when the
            provider sends a CA chain).
    """
    if relation is None:
        return None, None
    data = connection_info(requirer, relation, Source.S3.value)
    if isinstance(data, Incomplete):
        return data, None
    connection = evaluate(S3Connection, data, Source.S3.value, relation)
    if not isinstance(connection, S3Connection):
        return connection, None
    return render_s3(connection, system_cas() if connection.tls_ca_chain else ())


def read_azure(requirer: AzureStorageRequirer, relation: ops.Relation | None) -> SourceResult:
    """The Azure Storage contribution (None without a relation)."""
    return _read(requirer, relation, Source.AZURE, AzureConnection, render_azure)


def read_gcs(requirer: GCSRequirer, relation: ops.Relation | None) -> SourceResult:
    """The GCS contribution (None without a relation)."""
    return _read(requirer, relation, Source.GCS, GCSConnection, render_gcs)


def _read(
    requirer: Requirer,
    relation: ops.Relation | None,
    source: Source,
    model: type[ModelT],
    render: Callable[[ModelT], Contribution],
) -> SourceResult:
    """Library data → typed connection → contribution, or why there is none."""
    if relation is None:
        return None
    data = connection_info(requirer, relation, source.value)
    if isinstance(data, Incomplete):
        return data
    connection = evaluate(model, data, source.value, relation)
    if isinstance(connection, (Incomplete, Invalid)):
        return connection
    return render(connection)
