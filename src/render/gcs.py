r"""Properties for a Google Cloud Storage integration (`gcs-credentials`).

Pure: a `GCSConnection` in, a `Contribution` out.

The Cloud Storage connector is configured with the service account's key *inline*
(`fs.gs.auth.service.account.{email,private.key.id,private.key}`, connector 2.x), because the hub
can only distribute properties: a key *file* would need a mounted Secret (see the truststore
design in `docs/reference/integrations.md`). Connector 3.x dropped inline keys and only reads a
JSON key file; it is not supported by this integration.

The private key is multi-line PEM: the contribution declares it `multiline`, and the Secret
holds its line breaks as the two characters `\\n` (`core.properties.escape_value`), which
`java.util.Properties` turns back into line breaks when `spark-submit` loads the file spark8t
writes; so the connector reads the PEM exactly.
"""

from __future__ import annotations

from core.connections import GCSConnection
from core.properties import Contribution, Source
from render.storage import locations

_PREFIX = "spark.hadoop.fs.gs."
_CONNECTOR = "com.google.cloud.hadoop.fs.gcs."
PRIVATE_KEY = f"{_PREFIX}auth.service.account.private.key"
PRIVATE_KEY_ID = f"{_PREFIX}auth.service.account.private.key.id"


def render_gcs(connection: GCSConnection) -> Contribution:
    """The GCS connector properties for one bucket and service account."""
    key = connection.secret_key
    properties = {
        "spark.hadoop.fs.gs.impl": f"{_CONNECTOR}GoogleHadoopFileSystem",
        "spark.hadoop.fs.AbstractFileSystem.gs.impl": f"{_CONNECTOR}GoogleHadoopFS",
        f"{_PREFIX}auth.service.account.enable": "true",
        f"{_PREFIX}auth.service.account.email": key.client_email,
        PRIVATE_KEY_ID: key.private_key_id.get_secret_value(),
        PRIVATE_KEY: key.private_key.get_secret_value().strip().replace("\r\n", "\n"),
    }
    if key.project_id:
        properties[f"{_PREFIX}project.id"] = key.project_id
    properties |= locations(f"gs://{connection.bucket}/", connection.path)
    return Contribution(
        Source.GCS,
        properties,
        sensitive=frozenset({PRIVATE_KEY, PRIVATE_KEY_ID}),
        multiline=frozenset({PRIVATE_KEY}),
    )
