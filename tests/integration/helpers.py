"""Helpers of the integration suite: the cluster through lightkube and spark8t, MinIO, polling."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar, cast

import yaml
from lightkube import Client
from lightkube.core.exceptions import ApiError
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Namespace, Secret, Service

ROOT = Path(__file__).parents[2]
HUB = "spark-integration-hub-k8s"
IMAGE = yaml.safe_load((ROOT / "charmcraft.yaml").read_text())["resources"][
    "integration-hub-image"
]["upstream-source"]
"""The workload image, as pinned in charmcraft.yaml."""
SECRET_PREFIX = "integrator-hub-conf-"
MINIO_IMAGE = os.environ.get("MINIO_IMAGE", "minio/minio:RELEASE.2025-04-22T22-12-26Z")
S3_INTEGRATOR_CHANNEL = os.environ.get("S3_INTEGRATOR_CHANNEL", "2/edge")
GCS_INTEGRATOR_CHANNEL = os.environ.get("GCS_INTEGRATOR_CHANNEL", "1/edge")
POSTGRESQL_CHANNEL = os.environ.get("POSTGRESQL_CHANNEL", "14/stable")

T = TypeVar("T")


def eventually(check: Callable[[], T], timeout: float = 120.0, interval: float = 2.0) -> T:
    """Poll `check` until it returns a truthy value or `timeout` passes (the last value)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def kube() -> Client:
    """A lightkube client for the model's cluster (KUBECONFIG)."""
    return Client(field_manager="hub-integration-tests")


def create_namespace(name: str) -> None:
    """Create `name` if it does not exist yet."""
    try:
        kube().create(Namespace(metadata={"name": name}))  # type: ignore[arg-type]
    except ApiError as error:
        if error.status.code != 409:
            raise


def remove_namespace(name: str) -> None:
    """Delete `name` (and all in it); gone already is fine."""
    try:
        kube().delete(Namespace, name)
    except ApiError as error:
        if error.status.code != 404:
            raise


def hub_secret_names(namespace: str) -> set[str]:
    """The names of the hub Secrets in `namespace`."""
    return {
        str(secret.metadata.name)
        for secret in kube().list(Secret, namespace=namespace)
        if secret.metadata
        and secret.metadata.name
        and secret.metadata.name.startswith(SECRET_PREFIX)
    }


class Spark8t:
    """spark8t's registry on the test cluster (imported late: spark8t reads the environment)."""

    def __init__(self) -> None:
        from spark8t.domain import Defaults
        from spark8t.kube_interface.lightkube import LightKubeInterface
        from spark8t.registry.k8s import K8sServiceAccountRegistry

        self.kube = LightKubeInterface(os.environ["KUBECONFIG"], Defaults({}))
        self.registry = K8sServiceAccountRegistry(self.kube)

    def create(self, namespace: str, name: str) -> None:
        """Create a Spark service account, as `spark-client.service-account-registry` does."""
        from spark8t.domain import ServiceAccount
        from spark8t.utils import PropertyFile

        account = ServiceAccount(
            name, namespace, self.kube.api_server, extra_confs=PropertyFile({})
        )
        self.registry.create(account)

    def properties(self, account: str) -> dict[str, str]:
        """What spark8t reads for `namespace:name`, the hub's Secret included ({} if none)."""
        found = self.registry.get(account)
        return dict(found.configurations.props) if found is not None else {}

    def exists(self, account: str) -> bool:
        """Whether spark8t lists the account."""
        return self.registry.get(account) is not None


@dataclass(frozen=True)
class Minio:
    """The MinIO server the S3 test deploys."""

    namespace: str
    endpoint: str
    access_key: str
    secret_key: str


def deploy_minio(namespace: str = "minio-it") -> Minio:
    """A single-node MinIO (Deployment + Service) in `namespace`, once it is available."""
    create_namespace(namespace)
    access_key, secret_key = "hub-it-access", "hub-it-secret-key"
    labels = {"app": "minio"}
    deployment = Deployment.from_dict(
        {
            "metadata": {"name": "minio", "namespace": namespace},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "containers": [
                            {
                                "name": "minio",
                                "image": MINIO_IMAGE,
                                "args": ["server", "/data"],
                                "env": [
                                    {"name": "MINIO_ROOT_USER", "value": access_key},
                                    {"name": "MINIO_ROOT_PASSWORD", "value": secret_key},
                                ],
                                "ports": [{"containerPort": 9000}],
                                "readinessProbe": {
                                    "httpGet": {"path": "/minio/health/ready", "port": 9000}
                                },
                            }
                        ]
                    },
                },
            },
        }
    )
    service = Service.from_dict(
        {
            "metadata": {"name": "minio", "namespace": namespace},
            "spec": {"selector": labels, "ports": [{"port": 9000, "targetPort": 9000}]},
        }
    )
    client = kube()
    client.apply(cast(Deployment, deployment))
    client.apply(cast(Service, service))

    def available() -> bool:
        status = client.get(Deployment, "minio", namespace=namespace).status
        return bool(status and status.availableReplicas)

    if not eventually(available, timeout=300):
        raise AssertionError(f"MinIO in {namespace} did not become available")
    return Minio(
        namespace, f"http://minio.{namespace}.svc.cluster.local:9000", access_key, secret_key
    )


def fake_gcs_key() -> str:
    """A well-formed GCP service-account JSON key (not a real one: nothing calls GCS here)."""
    return json.dumps(
        {
            "type": "service_account",
            "project_id": "hub-it",
            "private_key_id": "0" * 40,
            "private_key": "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n",
            "client_email": "hub-it@hub-it.iam.gserviceaccount.com",
            "client_id": "1" * 21,
            "token_uri": "https://oauth2.googleapis.com/token",
        }
    )
