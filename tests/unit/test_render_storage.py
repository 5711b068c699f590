"""The object-store rule: every store's credentials, one store's locations (S3 > Azure > GCS)."""

import pytest

from core.inputs import Incomplete, Invalid
from core.properties import Contribution, Source, SparkProperties
from render.storage import (
    LOCATION_KEYS,
    STORE_PRIORITY,
    apply_store_priority,
    locations,
    primary_store,
)


def store(source: Source, scheme: str) -> Contribution:
    properties = {f"spark.hadoop.{scheme}.credential": f"{scheme}-key"}
    properties |= locations(f"{scheme}://bucket/", "events")
    return Contribution(source, properties, frozenset({f"spark.hadoop.{scheme}.credential"}))


S3 = store(Source.S3, "s3a")
AZURE = store(Source.AZURE, "abfss")
GCS = store(Source.GCS, "gs")


def test_locations_follow_the_reference_layout():
    assert locations("s3a://spark/", "spark-events") == {
        "spark.eventLog.enabled": "true",
        "spark.eventLog.dir": "s3a://spark/spark-events",
        "spark.history.fs.logDirectory": "s3a://spark/spark-events",
        "spark.kubernetes.file.upload.path": "s3a://spark/",
        "spark.sql.warehouse.dir": "s3a://spark/warehouse",
    }
    assert set(locations("gs://b/", "")) == LOCATION_KEYS
    assert locations("gs://b/", "")["spark.eventLog.dir"] == "gs://b/"


def test_priority_is_s3_then_azure_then_gcs():
    assert STORE_PRIORITY == (Source.S3, Source.AZURE, Source.GCS)


@pytest.mark.parametrize(
    ("stores", "primary"),
    [
        ({Source.S3: S3, Source.AZURE: AZURE, Source.GCS: GCS}, Source.S3),
        ({Source.S3: None, Source.AZURE: AZURE, Source.GCS: GCS}, Source.AZURE),
        ({Source.AZURE: AZURE, Source.GCS: GCS}, Source.AZURE),
        ({Source.S3: None, Source.AZURE: None, Source.GCS: GCS}, Source.GCS),
        ({Source.S3: Incomplete("s3-credentials", "waiting"), Source.GCS: GCS}, Source.S3),
        ({Source.S3: None, Source.AZURE: Invalid("azure", "bad"), Source.GCS: GCS}, Source.AZURE),
        ({Source.S3: None, Source.AZURE: None, Source.GCS: None}, None),
        ({}, None),
    ],
)
def test_the_primary_is_the_first_related_store(stores, primary):
    assert primary_store(stores) == primary


def test_every_store_keeps_its_credentials_and_only_the_primary_keeps_locations():
    result = apply_store_priority({Source.S3: S3, Source.AZURE: AZURE, Source.GCS: GCS})

    assert result[Source.S3] == S3
    for other, original in ((Source.AZURE, AZURE), (Source.GCS, GCS)):
        contribution = result[other]
        assert isinstance(contribution, Contribution)
        assert not LOCATION_KEYS & set(contribution.properties)
        assert contribution.properties == {
            k: v for k, v in original.properties.items() if k not in LOCATION_KEYS
        }
        assert contribution.sensitive == original.sensitive
        assert contribution.source == other


def test_after_the_merge_the_locations_are_the_primarys_although_gcs_merges_last():
    merged = SparkProperties.merge(
        apply_store_priority({Source.S3: S3, Source.AZURE: AZURE, Source.GCS: GCS}).values()
    ).as_dict()
    assert merged["spark.eventLog.dir"] == "s3a://bucket/events"
    assert merged["spark.sql.warehouse.dir"] == "s3a://bucket/warehouse"
    assert merged["spark.hadoop.s3a.credential"] == "s3a-key"
    assert merged["spark.hadoop.abfss.credential"] == "abfss-key"
    assert merged["spark.hadoop.gs.credential"] == "gs-key"


def test_a_waiting_s3_does_not_hand_the_locations_to_azure():
    waiting = Incomplete("s3-credentials", "waiting for `secret-key`")
    result = apply_store_priority({Source.S3: waiting, Source.AZURE: AZURE})
    assert result[Source.S3] is waiting
    azure = result[Source.AZURE]
    assert isinstance(azure, Contribution)
    assert not LOCATION_KEYS & set(azure.properties)


def test_a_lone_store_keeps_everything():
    assert apply_store_priority({Source.S3: None, Source.AZURE: None, Source.GCS: GCS}) == {
        Source.S3: None,
        Source.AZURE: None,
        Source.GCS: GCS,
    }
