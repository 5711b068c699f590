"""Reader of the `metastore` relation (`postgresql_client`), through `dpcharmlibs-interfaces`.

This module owns building the library's requirer for the Hive metastore database, and reading
the provider's response for that database into a `SourceResult`.

The database is requested once, when the relation is created (data-interfaces v1: the request
lives in the hub's application databag, and a provider refuses a changed `resource`). So if
`metastore-database-name` changes afterwards, the provider's answer names the old database:
the reader reports that as `Invalid`, with the fix (set the option back, or re-relate).
"""

from __future__ import annotations

import logging
import warnings

import ops
from pydantic.warnings import UnsupportedFieldAttributeWarning

from core.connections import PostgresConnection
from core.inputs import Incomplete, Invalid, SourceResult
from core.properties import Source
from render.metastore import render_metastore
from sources.common import ShieldedRelationChanged, evaluate, provider_name

with warnings.catch_warnings():
    # dpcharmlibs-interfaces 1.2.2 puts `Field(default=..., exclude=...)` on union members;
    # pydantic warns about it (from its own module) while the library's models are built.
    warnings.filterwarnings("ignore", category=UnsupportedFieldAttributeWarning)
    from dpcharmlibs.interfaces import (
        DataInterfacesError,
        RequirerCommonModel,
        ResourceProviderModel,
        ResourceRequirerEventHandler,
    )

logger = logging.getLogger(__name__)

ENDPOINT = Source.METASTORE.value


class _MetastoreRequirer(
    ShieldedRelationChanged, ResourceRequirerEventHandler[ResourceProviderModel]
):
    """The library's requirer, whose relation-changed handler never errors the hook."""


MetastoreRequirer = ResourceRequirerEventHandler[ResourceProviderModel]
"""The library's requirer type on `metastore`."""


def metastore_requirer(charm: ops.CharmBase, database: str) -> MetastoreRequirer:
    """The library's requirer on `metastore`, asking for `database`."""
    return _MetastoreRequirer(
        charm,
        ENDPOINT,
        [RequirerCommonModel(resource=database)],
        response_model=ResourceProviderModel,
    )


def _responses(
    requirer: ResourceRequirerEventHandler[ResourceProviderModel], relation: ops.Relation
) -> list[ResourceProviderModel] | Incomplete | Invalid:
    """The provider's responses, secrets resolved by the library."""
    try:
        model = requirer.interface.build_model(relation.id, component=relation.app)
    except (ops.ModelError, DataInterfacesError) as error:
        logger.info("%s: credentials not readable yet (%s)", ENDPOINT, type(error).__name__)
        return Incomplete(
            ENDPOINT, f"the credentials secret of {provider_name(relation)} is not readable yet"
        )
    except (ValueError, TypeError):
        return Invalid(
            ENDPOINT,
            f"`requests` from {provider_name(relation)}: not a postgresql_client v1 response",
        )
    return list(model.requests)


def read_metastore(
    requirer: ResourceRequirerEventHandler[ResourceProviderModel],
    relation: ops.Relation | None,
    database: str,
) -> SourceResult:
    """The metastore contribution for `database` (None without a relation)."""
    if relation is None:
        return None
    responses = _responses(requirer, relation)
    if not isinstance(responses, list):
        return responses
    provider = provider_name(relation)
    if not responses:
        return Incomplete(ENDPOINT, f"waiting for {provider} to create database {database!r}")
    response = next((r for r in responses if r.resource == database), None)
    if response is None:
        offered = ", ".join(sorted(repr(r.resource) for r in responses))
        return Invalid(
            ENDPOINT,
            f"`resource` from {provider} is {offered}, but metastore-database-name is "
            f"{database!r}: set the option back, or remove and re-add the relation",
        )
    data = {
        "resource": response.resource,
        "endpoints": response.endpoints,
        "username": response.username,
        "password": response.password,
        "tls": response.tls,
    }
    connection = evaluate(PostgresConnection, data, ENDPOINT, relation)
    return (
        render_metastore(connection) if isinstance(connection, PostgresConnection) else connection
    )
