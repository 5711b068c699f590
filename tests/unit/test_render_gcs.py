"""GCS: every connector property from what `GCSRequirer` returns, and bad keys."""

import base64
import json

import pytest

from core.connections import FieldError, GCSConnection, MissingFieldsError
from core.properties import Source, SparkProperties
from core.values import screen
from render.gcs import render_gcs

PRIVATE_KEY = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n"
    "qNbWAs9Xc3yBZcP8nKEXAMPLEONLY\n"
    "-----END PRIVATE KEY-----\n"
)
SERVICE_ACCOUNT = {
    "type": "service_account",
    "project_id": "spark-project",
    "private_key_id": "0123456789abcdef0123456789abcdef01234567",
    "private_key": PRIVATE_KEY,
    "client_email": "spark@spark-project.iam.gserviceaccount.com",
    "client_id": "123456789012345678901",
    "auth_uri": "https://accounts.google.com/o/oauth2/auth",
    "token_uri": "https://oauth2.googleapis.com/token",
}

# gcs-integrator puts the service-account JSON text in the `secret-key` of its Juju secret;
# `GCSRequirer.get_storage_connection_info` json-decodes it, so it arrives as a dict.
GCS_INFO = {
    "bucket": "spark-bucket",
    "storage-class": "STANDARD",
    "path": "spark-events",
    "secret-key": SERVICE_ACCOUNT,
}


def render(info):
    return render_gcs(GCSConnection.from_relation(info))


def test_every_property_from_a_full_gcs_relation():
    contribution = render(GCS_INFO)
    assert contribution.source is Source.GCS
    assert contribution.properties == {
        "spark.hadoop.fs.gs.impl": "com.google.cloud.hadoop.fs.gcs.GoogleHadoopFileSystem",
        "spark.hadoop.fs.AbstractFileSystem.gs.impl": (
            "com.google.cloud.hadoop.fs.gcs.GoogleHadoopFS"
        ),
        "spark.hadoop.fs.gs.project.id": "spark-project",
        "spark.hadoop.fs.gs.auth.service.account.enable": "true",
        "spark.hadoop.fs.gs.auth.service.account.email": SERVICE_ACCOUNT["client_email"],
        "spark.hadoop.fs.gs.auth.service.account.private.key.id": SERVICE_ACCOUNT[
            "private_key_id"
        ],
        "spark.hadoop.fs.gs.auth.service.account.private.key": PRIVATE_KEY.strip(),
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": "gs://spark-bucket/spark-events",
        "spark.history.fs.logDirectory": "gs://spark-bucket/spark-events",
        "spark.kubernetes.file.upload.path": "gs://spark-bucket/",
        "spark.sql.warehouse.dir": "gs://spark-bucket/warehouse",
    }
    assert contribution.sensitive == {
        "spark.hadoop.fs.gs.auth.service.account.private.key",
        "spark.hadoop.fs.gs.auth.service.account.private.key.id",
    }


def test_only_the_private_key_is_multi_line_and_its_secret_form_escapes_the_line_breaks():
    contribution = render(GCS_INFO)
    key = "spark.hadoop.fs.gs.auth.service.account.private.key"
    assert contribution.multiline == {key}
    assert screen(contribution) is contribution
    others = {k: v for k, v in contribution.properties.items() if k != key}
    assert all("\n" not in value and "\r" not in value for value in others.values())
    data = SparkProperties.merge([contribution]).secret_data()
    assert data[key] == PRIVATE_KEY.strip().replace("\n", "\\n")


@pytest.mark.parametrize(
    "secret_key",
    [
        json.dumps(SERVICE_ACCOUNT),
        base64.b64encode(json.dumps(SERVICE_ACCOUNT).encode()).decode(),
    ],
)
def test_the_key_may_also_arrive_as_json_text_or_base64(secret_key):
    assert render(GCS_INFO | {"secret-key": secret_key}) == render(GCS_INFO)


def test_no_project_id_no_project_property():
    key = {k: v for k, v in SERVICE_ACCOUNT.items() if k != "project_id"}
    assert "spark.hadoop.fs.gs.project.id" not in render(GCS_INFO | {"secret-key": key}).properties


@pytest.mark.parametrize("missing", ["bucket", "secret-key"])
def test_without_bucket_or_key_the_provider_has_not_delivered(missing):
    with pytest.raises(MissingFieldsError) as raised:
        GCSConnection.from_relation({k: v for k, v in GCS_INFO.items() if k != missing})
    assert raised.value.fields == (missing,)


@pytest.mark.parametrize(
    ("secret_key", "problem"),
    [
        ("not json at all", "not a service-account JSON key"),
        (["a", "list"], "not a service-account JSON key"),
        (SERVICE_ACCOUNT | {"type": "authorized_user"}, "not a service-account key"),
        ({k: v for k, v in SERVICE_ACCOUNT.items() if k != "private_key"}, "no `private_key`"),
        ({k: v for k, v in SERVICE_ACCOUNT.items() if k != "client_email"}, "no `client_email`"),
        (SERVICE_ACCOUNT | {"private_key": "MIIEvQ-not-pem"}, "not a PEM private key"),
    ],
)
def test_a_bad_service_account_key_is_named_but_never_quoted(secret_key, problem):
    with pytest.raises(FieldError) as raised:
        GCSConnection.from_relation(GCS_INFO | {"secret-key": secret_key})
    assert raised.value.field == "secret-key"
    assert problem in raised.value.problem
    for secret in ("MIIEvQ", SERVICE_ACCOUNT["private_key_id"]):
        assert secret not in str(raised.value)


def test_a_bad_bucket_is_named():
    with pytest.raises(FieldError) as raised:
        GCSConnection.from_relation(GCS_INFO | {"bucket": "no spaces please"})
    assert raised.value.field == "bucket"
