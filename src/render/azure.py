"""Properties for an Azure Storage integration (`azure-storage-credentials`, `azure_storage`).

Pure: an `AzureConnection` in, a `Contribution` out. The account key is the only credential;
it is listed in `Contribution.sensitive`. Locations follow `render.storage.locations`.
"""

from __future__ import annotations

from core.connections import AzureConnection
from core.properties import Contribution, Source
from render.storage import locations


def render_azure(connection: AzureConnection) -> Contribution:
    """The Hadoop Azure (ABFS/WASB) properties for one storage account and container.

    `fs.azure.account.key.<host>` carries the account key, where `<host>` is the provider's
    `endpoint` host or, without one, `<account>.dfs.core.windows.net` for abfs/abfss and
    `<account>.blob.core.windows.net` for wasb/wasbs.
    """
    host = connection.host
    key_property = f"spark.hadoop.fs.azure.account.key.{host}"
    base = f"{connection.connection_protocol}://{connection.container}@{host}/"
    properties = {key_property: connection.secret_key.get_secret_value()}
    properties |= locations(base, connection.path)
    return Contribution(Source.AZURE, properties, frozenset({key_property}))
