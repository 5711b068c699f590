"""The exact requests Kyuubi and data-kubeflow-integrator send, through the real charm.

The charm runs at its default config, under ops.testing for Juju, with the real gateway against
the test API server.

The databags are what those charms' vendored requirer library (the Charmhub library
`charms.spark_integration_hub_k8s.v0.spark_service_account`, on data_interfaces) writes at
`relation-created`, read from their public code and reproduced by running that library:

* kyuubi-k8s-operator: `service-account` = `<namespace option, default its model>:<service-account
  option, default kyuubi-spark-engine>`, `skip-creation` "false"; it then reads the S3 CA
  truststore from `resource-manifest`: the first Secret named `integrator-hub-conf-truststore*`,
  whose first `data` entry is the file it writes to `/etc/spark8t/conf/<secret>/<file>`.
* data-kubeflow-integrator: `service-account` = `<profile option, or its model when the profile
  is *>:<spark-service-account option>`, `skip-creation` "true"; it hands the manifest's objects
  to resource-dispatcher, which applies them in every Kubeflow profile namespace (without a
  namespace when the profile is `*`; RoleBinding subjects in `{{ NAMESPACE }}`).
"""

from __future__ import annotations

import base64
import json

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12
from ops import testing

from tests import relations
from tests.charm.conftest import MODEL
from tests.cluster.helpers import decoded, hub_secret

ENDPOINT = "spark-service-account"
PROPERTIES = {"spark-properties": "spark.executor.memory=4g"}
"""The operator's only setting: every account-policy option at its default."""
DATA_INTERFACES_SECRETS = ["username", "password", "tls", "tls-ca", "uris", "read-only-uris"]
KYUUBI = {
    "requested-secrets": json.dumps(
        [*DATA_INTERFACES_SECRETS, "spark-properties", "resource-manifest"]
    ),
    "provided-secrets": json.dumps(["mtls-cert"]),
    "service-account": f"{MODEL.name}:kyuubi-spark-engine",
    "skip-creation": "false",
}
KUBEFLOW = {
    "requested-secrets": json.dumps(
        [
            *DATA_INTERFACES_SECRETS,
            "entity-name",
            "entity-password",
            "spark-properties",
            "resource-manifest",
        ]
    ),
    "provided-secrets": json.dumps(["mtls-cert"]),
    "service-account": "kubeflow-profile-a:spark",
    "skip-creation": "true",
}
TRUSTSTORE_PREFIX = "integrator-hub-conf-truststore"
MOUNT_BASE = "/etc/spark8t/conf"
RBAC_AND_ACCOUNTS = ("/serviceaccounts", "/roles", "/rolebindings", "/namespaces")


def requirer(app: str, data: dict[str, str], relation_id: int | None = None) -> testing.Relation:
    """The relation as the hub sees it: the requirer's app and unit databags."""
    unit = {key: data[key] for key in ("requested-secrets", "provided-secrets")}
    extra = {"id": relation_id} if relation_id is not None else {}
    return testing.Relation(
        ENDPOINT,
        remote_app_name=app,
        remote_app_data=data,
        remote_units_data={0: unit},
        **extra,
    )


def juju_model(server, name: str) -> None:
    labels = {"app.kubernetes.io/managed-by": "juju", "model.juju.is/name": name}
    server.put(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}
    )


def pod(server, namespace: str, app: str) -> None:
    """A pod of a Juju application (Juju labels it with the application's name)."""
    labels = {"app.kubernetes.io/name": app}
    meta = {"name": f"{app}-0", "namespace": namespace, "labels": labels}
    spec = {"containers": [{"name": "charm", "image": f"{app}-charm"}]}
    server.put({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})


def answer(out: testing.State, relation: testing.Relation) -> dict[str, str]:
    local = out.get_relation(relation.id).local_app_data
    (secret,) = [s for s in out.secrets if s.owner == "app" and s.id == local["secret-extra"]]
    return dict(secret.latest_content or secret.tracked_content)


def kyuubi_truststore(manifest: str) -> tuple[str, bytes]:
    """What Kyuubi (2026) takes from the manifest: the file's path and content."""
    secret = next(
        doc
        for doc in yaml.safe_load_all(manifest)
        if isinstance(doc, dict)
        and doc.get("kind") == "Secret"
        and str(doc["metadata"]["name"]).startswith(TRUSTSTORE_PREFIX)
    )
    file_name, content = next(iter(secret["data"].items()))
    path = f"{MOUNT_BASE}/{secret['metadata']['name']}/{file_name}"
    return path, base64.b64decode(content, validate=True)


@pytest.fixture
def hub_model(cluster):
    """The hub's model namespace, with Kyuubi deployed in it (Charmed Apache Spark's layout)."""
    juju_model(cluster, MODEL.name)
    pod(cluster, MODEL.name, "kyuubi")
    cluster.clear_requests()
    return cluster


# -- Kyuubi ---------------------------------------------------------------------------------------


# The truststore adds this machine's CA bundle, one of whose certificates `cryptography` warns of.
@pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")
def test_kyuubi_in_the_hubs_model_is_granted_with_credentials_and_its_truststore(
    ctx, base_state, hub_model
):
    ca = relations.ca_certificate("minio CA")
    s3, secrets = relations.s3(relations.S3_PAYLOAD | {"tls-ca-chain": [ca]}).pair()
    kyuubi = requirer("kyuubi", KYUUBI)
    state = base_state(config=PROPERTIES, relations={s3, kyuubi}, secrets=secrets)

    out = ctx.run(ctx.on.relation_changed(kyuubi), state)

    assert isinstance(out.unit_status, testing.ActiveStatus), out.unit_status
    assert hub_model.get("ServiceAccount", "kyuubi-spark-engine", MODEL.name) is not None
    assert (
        out.get_relation(kyuubi.id).local_app_data["service-account"] == KYUUBI["service-account"]
    )
    content = answer(out, kyuubi)
    properties = json.loads(content["spark-properties"])
    assert properties["spark.hadoop.fs.s3a.secret.key"] == relations.SECRET_KEY
    path, truststore = kyuubi_truststore(content["resource-manifest"])
    assert path == f"{MOUNT_BASE}/{TRUSTSTORE_PREFIX}/truststore.p12"
    for pod_kind in ("driver", "executor"):
        assert (
            f"-Djavax.net.ssl.trustStore={path} "
            in properties[f"spark.{pod_kind}.extraJavaOptions"]
        )
        assert properties[f"spark.kubernetes.{pod_kind}.secrets.{TRUSTSTORE_PREFIX}"] == (
            f"{MOUNT_BASE}/{TRUSTSTORE_PREFIX}"
        )
    trusted = [bag.certificate for bag in pkcs12.load_pkcs12(truststore, None).additional_certs]
    assert x509.load_pem_x509_certificate(ca.encode()) in trusted
    # the same file, in the same Secret, in the namespace Spark pods mount it from
    served = hub_model.get("Secret", TRUSTSTORE_PREFIX, MODEL.name)
    assert base64.b64decode(served["data"]["truststore.p12"]) == truststore


def test_kyuubi_in_another_models_namespace_is_refused_naming_the_fix(ctx, base_state, cluster):
    juju_model(cluster, "prod")
    pod(cluster, "prod", "kyuubi")  # an application named kyuubi, of another model
    data = KYUUBI | {"service-account": "prod:kyuubi-spark-engine"}
    kyuubi = requirer("kyuubi", data)
    out = ctx.run(
        ctx.on.relation_changed(kyuubi), base_state(config=PROPERTIES, relations={kyuubi})
    )
    assert_refused(out, kyuubi, cluster, "`juju config <hub> service-account-namespaces=prod`")


@pytest.mark.parametrize("namespace", ["kube-system", "cert-manager"])
def test_an_account_in_an_infrastructure_namespace_is_refused(ctx, base_state, cluster, namespace):
    cluster.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    pod(cluster, namespace, "cert-manager")  # cert-manager's chart labels its pods so
    data = KYUUBI | {"service-account": f"{namespace}:spark"}
    app = requirer("cert-manager", data)  # a Juju application named like the chart
    out = ctx.run(ctx.on.relation_changed(app), base_state(config=PROPERTIES, relations={app}))
    assert_refused(out, app, cluster, f"service-account-namespaces={namespace}")


def test_a_cross_model_requirer_cannot_show_it_runs_in_the_hubs_model(ctx, base_state, hub_model):
    remote = requirer("remote-0123456789abcdef0123456789abcdef", KYUUBI)
    out = ctx.run(
        ctx.on.relation_changed(remote), base_state(config=PROPERTIES, relations={remote})
    )
    assert_refused(out, remote, hub_model, f"service-account-namespaces={MODEL.name}")


def test_a_second_application_asking_for_kyuubis_account_is_refused(ctx, base_state, hub_model):
    pod(hub_model, MODEL.name, "notebook")
    kyuubi = requirer("kyuubi", KYUUBI, relation_id=3)
    first = ctx.run(
        ctx.on.relation_changed(kyuubi), base_state(config=PROPERTIES, relations={kyuubi})
    )
    thief = requirer("notebook", KYUUBI, relation_id=4)
    state = base_state(
        config=PROPERTIES, relations={*first.relations, thief}, secrets=first.secrets
    )
    out = ctx.run(ctx.on.relation_changed(thief), state)
    assert isinstance(out.unit_status, testing.BlockedStatus)
    assert f"{ENDPOINT}:4 (notebook): account {KYUUBI['service-account']} belongs to " in (
        out.unit_status.message
    )
    assert "service-account-sharing=true" in out.unit_status.message
    assert "secret-extra" not in out.get_relation(4).local_app_data
    assert "secret-extra" in out.get_relation(3).local_app_data

    # Kyuubi leaves: its account goes with it, though the other application still asks
    gone = ctx.run(ctx.on.relation_broken(out.get_relation(3)), out)
    account = hub_model.get("ServiceAccount", "kyuubi-spark-engine", MODEL.name)
    assert account["metadata"]["annotations"]["integration-hub/relation"] == f"{ENDPOINT}:4"
    assert "secret-extra" in gone.get_relation(4).local_app_data


def assert_refused(out, relation, server, fix: str) -> None:
    assert isinstance(out.unit_status, testing.BlockedStatus), out.unit_status
    assert out.unit_status.message.startswith(f"{ENDPOINT}:{relation.id} ")
    assert fix in out.unit_status.message
    assert "secret-extra" not in out.get_relation(relation.id).local_app_data
    assert not [r for r in server.requests if r.method == "POST" and "/serviceaccounts" in r.path]


# -- Kubeflow -------------------------------------------------------------------------------------


def dispatch(server, manifest: str, profiles: list[str], pinned: bool) -> None:
    """Apply the manifest in each profile as data-kubeflow-integrator + resource-dispatcher do.

    The integrator drops `metadata.namespace` when its profile is `*` and writes RoleBinding
    subjects' namespace as `{{ NAMESPACE }}`; the dispatcher renders that, skips objects pinned
    to another namespace and sets `metadata.namespace` to the profile.
    """
    for profile in profiles:
        server.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": profile}})
        for document in yaml.safe_load_all(manifest):
            if not pinned:
                document["metadata"].pop("namespace", None)
            for subject in document.get("subjects", []):
                subject["namespace"] = "{{ NAMESPACE }}"
            rendered = yaml.safe_load(yaml.safe_dump(document).replace("{{ NAMESPACE }}", profile))
            pinned_to = rendered["metadata"].get("namespace")
            if pinned_to and pinned_to != profile:
                continue
            rendered["metadata"]["namespace"] = profile
            server.put(rendered)


def test_kubeflow_with_no_account_yet_is_answered_at_once_and_nothing_is_created(
    ctx, base_state, cluster
):
    kubeflow = requirer("data-kubeflow-integrator", KUBEFLOW)
    out = ctx.run(
        ctx.on.relation_changed(kubeflow), base_state(config=PROPERTIES, relations={kubeflow})
    )

    assert isinstance(out.unit_status, testing.ActiveStatus), out.unit_status
    writes = [r for r in cluster.requests if r.method in ("POST", "PUT", "PATCH", "DELETE")]
    assert not [r for r in writes if r.path.endswith(RBAC_AND_ACCOUNTS)]
    content = answer(out, kubeflow)
    assert json.loads(content["spark-properties"]) == {"spark.executor.memory": "4g"}
    documents = list(yaml.safe_load_all(content["resource-manifest"]))
    assert [(d["kind"], d["metadata"]["name"]) for d in documents] == [
        ("ServiceAccount", "spark"),
        ("Role", "spark-role"),
        ("RoleBinding", "spark-role-binding"),
        ("Secret", "integrator-hub-conf-spark"),
    ]
    assert {d["metadata"]["namespace"] for d in documents} == {"kubeflow-profile-a"}
    assert "data" not in documents[3]


@pytest.mark.parametrize("profile", ["*", "kubeflow-profile-a"])
def test_the_dispatched_accounts_get_their_properties_and_spark8t_reads_them(
    ctx, base_state, cluster, spark8t, profile
):
    namespace = MODEL.name if profile == "*" else profile  # the integrator's own model for *
    kubeflow = requirer(
        "data-kubeflow-integrator", KUBEFLOW | {"service-account": f"{namespace}:spark"}
    )
    first = ctx.run(
        ctx.on.relation_changed(kubeflow), base_state(config=PROPERTIES, relations={kubeflow})
    )
    profiles = ["kubeflow-profile-a", "kubeflow-profile-b"]
    dispatch(cluster, answer(first, kubeflow)["resource-manifest"], profiles, profile != "*")

    state = base_state(config=PROPERTIES, relations=first.relations, secrets=first.secrets)
    out = ctx.run(ctx.on.update_status(), state)  # the watcher's notice, or update-status

    assert isinstance(out.unit_status, testing.ActiveStatus), out.unit_status
    served = profiles if profile == "*" else profiles[:1]
    for name in profiles:
        if name not in served:  # pinned to profile A: the dispatcher skips profile B
            assert cluster.get("ServiceAccount", "spark", name) is None
            continue
        assert decoded(hub_secret(cluster, name, "spark")) == {"spark.executor.memory": "4g"}
        account = spark8t.registry.get(f"{name}:spark")
        assert account.configurations.props["spark.executor.memory"] == "4g"
