"""Hostile input on every surface the hub reads, against the real charm and the test API server.

Surfaces: each config option, and each of the six integrations' databags and Juju secrets —
starting from what the providers' own code writes (`tests.relations`) and replacing fields with
hostile text: control characters, line and paragraph separators, lone surrogates, backslashes,
`=`/`:`, whitespace-only, deep or wrong-typed JSON, huge values — sometimes under an injected
API fault. `World.check` asserts the invariants after every hook; the counts go to
`COUNTS_FILE`, from which `python -m tests.fuzz.report` prints docs/reliability.md's table.

Fixed seed (`derandomize=True`) and bounded example counts: the whole suite runs in about a
minute; it is part of the `unit` tox env, so `make test` runs it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from ops import testing

from tests import relations
from tests.fuzz.world import BASE_CONFIG, CANARIES, FAULTS, World
from tests.kube_server.faults import Fault, RawAnswer
from tests.kube_server.server import KubeServer

EXAMPLES = 25

FUZZ = settings(
    derandomize=True,
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)

SPECIAL = [
    "",
    " ",
    "\t",
    "\\",
    "\\u0041",
    "\n",
    "\r",
    "\r\n",
    "\x00",
    "\x0b",
    "\x0c",
    "\x1c",
    "\x85",
    "\u2028",
    "\u2029",
    "\ud800",
    "\udfff",
    "\ufeff",
    "=",
    ":",
    "#",
    "!",
    "spark.evil=1",
    "../../",
    "%00",
    "${HOME}",
    "ü☃日本",
    "x" * 3000,
]

hostile_text = st.lists(st.one_of(st.sampled_from(SPECIAL), st.text(max_size=20)), max_size=5).map(
    "".join
)
"""Text built from the characters and shapes that break `key=value` files and parsers."""

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), hostile_text),
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(hostile_text, children, max_size=3)
    ),
    max_leaves=8,
)
deep_json = st.integers(min_value=50, max_value=20_000).map(lambda n: "[" * n + "]" * n)
raw_field = st.one_of(
    hostile_text,
    json_values.map(json.dumps),
    deep_json,
    st.sampled_from(["not json", "{", "[]", "{}", "null", "true", "1e999"]),
)
"""Any value a databag field (always a string) can hold."""

credential = st.tuples(hostile_text, st.sampled_from(CANARIES), hostile_text).map(
    lambda parts: "".join(parts).replace("\n", "")
)
"""A credential: hostile text around a canary (no line feed: a split line is a new line)."""

fault = st.sampled_from(list(FAULTS) + ["none"] * 6)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[World]:
    server = KubeServer().start()
    path = server.write_kubeconfig(tmp_path_factory.mktemp("fuzz") / "kubeconfig")
    patch = pytest.MonkeyPatch()
    patch.setenv("KUBECONFIG", str(path))
    patch.setenv("NO_PROXY", "127.0.0.1")
    patch.setenv("no_proxy", "127.0.0.1")
    try:
        yield World(server)
    finally:
        patch.undo()
        server.stop()


@pytest.fixture(scope="module", autouse=True)
def counts_written(world) -> Iterator[None]:
    yield
    world.write_counts()


# -- config options -----------------------------------------------------------------------------

spark_properties = st.lists(
    st.tuples(
        st.one_of(
            st.sampled_from(
                [
                    "spark.executor.memory",
                    "spark.hadoop.fs.s3a.secret.key",
                    "spark.driver.extraJavaOptions",
                    "spark.kubernetes.namespace",
                    "spark.kubernetes.authenticate.driver.serviceAccountName",
                ]
            ),
            hostile_text.map(lambda text: "spark." + text),
            hostile_text,
        ),
        st.one_of(hostile_text, credential),
        st.sampled_from(["\n", "\r\n", "\u2028", "\n\n#", "\n"]),
    ),
    max_size=6,
).map(lambda lines: "".join(f"{key}={value}{end}" for key, value, end in lines))

OPTIONS = {
    "enable-dynamic-allocation": st.booleans(),
    "driver-pod-template": hostile_text,
    "executor-pod-template": hostile_text,
    "spark-image": hostile_text,
    "spark-properties": st.one_of(spark_properties, hostile_text),
    "monitored-service-accounts": st.one_of(
        hostile_text, st.sampled_from(["*:*", "team-a:*", "team-z:*", "team-a:alice,team-b:*"])
    ),
    "metastore-database-name": hostile_text,
}


@pytest.mark.parametrize("option", sorted(OPTIONS))
def test_config_option(world, option):
    @FUZZ
    @given(value=OPTIONS[option], fault=fault, get_config=st.booleans())
    def example(value, fault, get_config):
        config = BASE_CONFIG | {option: value}
        world.run(
            f"config: {option}",
            lambda on: on.config_changed(),
            config=config,
            fault=fault,
            get_config=get_config,
        )

    example()


# -- integrations -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Surface:
    """One integration: its relation as the provider wrote it, and what may be replaced."""

    link: object
    fields: tuple[str, ...]
    secret_fields: tuple[str, ...] = ()


def _surfaces() -> dict[str, Surface]:
    return {
        "s3-credentials": Surface(
            relations.s3(),
            (
                "bucket",
                "endpoint",
                "region",
                "s3-uri-style",
                "path",
                "tls-ca-chain",
                "secret-extra",
            ),
            ("access-key", "secret-key"),
        ),
        "azure-storage-credentials": Surface(
            relations.azure(),
            ("container", "storage-account", "connection-protocol", "path", "endpoint"),
            ("secret-key",),
        ),
        "gcs-credentials": Surface(
            relations.gcs(), ("bucket", "path", "storage-class"), ("secret-key",)
        ),
        "metastore": Surface(relations.metastore(), ("requests", "data", "version")),
    }


SURFACES = _surfaces()


def _replace_secrets(link, values: dict[str, str]) -> set[testing.Secret]:
    secrets = set()
    for secret in link.secrets:
        content = dict(secret.latest_content or secret.tracked_content)
        content |= {k: v for k, v in values.items() if k in content}
        secrets.add(dataclasses.replace(secret, tracked_content=content, latest_content=content))
    return secrets


@pytest.mark.parametrize("endpoint", sorted(SURFACES))
def test_integration_databag(world, endpoint):
    surface = SURFACES[endpoint]
    fields = st.dictionaries(st.sampled_from(surface.fields), raw_field, max_size=3)
    secret_values = st.dictionaries(
        st.sampled_from(surface.secret_fields or ("none",)), credential, max_size=2
    )

    @FUZZ
    @given(fields=fields, secret_values=secret_values, fault=fault, get_config=st.booleans())
    def example(fields, secret_values, fault, get_config):
        link = surface.link
        relation = dataclasses.replace(
            link.relation, remote_app_data={**link.relation.remote_app_data, **fields}
        )
        secrets = _replace_secrets(link, secret_values)
        world.run(
            endpoint,
            lambda on: on.relation_changed(relation, remote_unit=0),
            config=BASE_CONFIG,
            relations=[relation],
            secrets=secrets,
            fault=fault,
            get_config=get_config,
        )

    example()


def test_metastore_credentials(world):
    """The metastore's user secret (username, password, uris) with hostile content."""
    link = SURFACES["metastore"].link
    values = st.fixed_dictionaries(
        {"password": credential}, optional={"username": raw_field, "uris": raw_field}
    )

    @FUZZ
    @given(values=values, fault=fault)
    def example(values, fault):
        world.run(
            "metastore",
            lambda on: on.relation_changed(link.relation, remote_unit=0),
            config=BASE_CONFIG,
            relations=[link.relation],
            secrets=_replace_secrets(link, values),
            fault=fault,
        )

    example()


def test_cos_databag(world):
    push_endpoint = st.one_of(raw_field, raw_field.map(lambda url: json.dumps({"url": url})))

    @FUZZ
    @given(value=push_endpoint, fault=fault)
    def example(value, fault):
        relation = relations.pushgateway(raw=value)
        world.run(
            "cos",
            lambda on: on.relation_changed(relation, remote_unit=0),
            config=BASE_CONFIG,
            relations=[relation],
            fault=fault,
        )

    example()


def test_logging_databags(world):
    endpoint = st.one_of(raw_field, raw_field.map(lambda url: json.dumps({"url": url})))
    units = st.dictionaries(
        st.integers(0, 3), st.dictionaries(st.just("endpoint"), endpoint), min_size=1, max_size=3
    )

    @FUZZ
    @given(units=units, fault=fault)
    def example(units, fault):
        relation = relations.logging_relation(units)
        world.run(
            "logging",
            lambda on: on.relation_changed(relation, remote_unit=min(units)),
            config=BASE_CONFIG,
            relations=[relation],
            fault=fault,
        )

    example()


# -- what the API server (or a proxy in front of it) answers --------------------------------------

REQUESTS = {
    "account list": ("GET", "/api/v1/serviceaccounts"),
    "secret list": ("GET", "/api/v1/secrets"),
    "secret write": ("PUT", "/secrets/integrator-hub-conf-"),
    "any request": (None, None),
}
"""Which request gets the answer (method, path it contains)."""
SECRET_LABELS = {"app.kubernetes.io/managed-by": "integration-hub"}
BODIES = {
    "empty": b"",
    "text": b"upstream connect error or disconnect/reset before headers",
    "html login page": b"<html><body><form action=/login>Sign in</form></body></html>",
    "nested list": b"[" * 100_000 + b"]" * 100_000,
    "nested object": b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    "json list": b"[1, 2]",
    "status of wrong types": json.dumps(
        {"kind": "Status", "code": "x", "reason": 5, "message": [1], "details": "y"}
    ).encode(),
    "huge": b"x" * 1_500_000,
    "items an object": json.dumps(
        {"kind": "List", "apiVersion": "v1", "metadata": {}, "items": {"a": 1}}
    ).encode(),
    "data of wrong types": json.dumps(
        {
            "kind": "SecretList",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": "1"},
            "items": [
                {
                    "metadata": {
                        "name": "integrator-hub-conf-alice",
                        "namespace": "team-a",
                        "labels": SECRET_LABELS,
                    },
                    "data": {"spark.executor.memory": 5, "x": None, "y": ["z"]},
                },
                {"metadata": {"name": 7, "namespace": ["team-a"]}, "data": "s"},
            ],
        }
    ).encode(),
}
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "text/html",
    "text/plain",
    None,
]
RETRY_AFTERS = [None, "1", "0", "\u00b2", "1e23", "-1", "99999999999999999999", "Wed, 21 Oct 2015"]
STATUSES = [200, 201, 400, 401, 403, 404, 409, 410, 422, 429, 500, 502, 503]


def answer_fault(request: str, status: int, content_type, body: str, retry_after, times):
    """The fault that answers `request` (`times` times) with exactly these bytes."""
    headers = {"Content-Type": content_type} if content_type else {}
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    method, path = REQUESTS[request]
    answer = RawAnswer(status, BODIES[body], headers)
    return Fault(method=method, path_contains=path, answer=answer, times=times)


def test_api_answers(world):
    """Any status × content type × body × Retry-After on any request: no crash, no loss."""
    memory = iter(range(1, 10_000))

    @settings(FUZZ, max_examples=60, phases=(Phase.explicit, Phase.generate))
    @given(
        request=st.sampled_from(list(REQUESTS)),
        status=st.sampled_from(STATUSES),
        content_type=st.sampled_from(CONTENT_TYPES),
        body=st.sampled_from(list(BODIES)),
        retry_after=st.sampled_from(RETRY_AFTERS),
        times=st.sampled_from([1, 3]),
    )
    def example(request, status, content_type, body, retry_after, times):
        fault = answer_fault(request, status, content_type, body, retry_after, times)
        config = {"spark-properties": f"spark.executor.memory={next(memory)}g"}
        out = world.run(
            f"API answer: {request}", lambda on: on.config_changed(), config=config, fault=fault
        )
        assert len(out.unit_status.message) < 1000
        assert "\n" not in out.unit_status.message
        # once the API answers as it should again, the hub converges: by itself, or (after a
        # 400/422 to a write, which it does not repeat with the same properties) when asked to
        settled = world.run("API answer: recovery", lambda on: on.update_status(), config=config)
        if settled.unit_status.name != "active":
            world.run("API answer: recovery", lambda on: on.action("reconcile"), config=config)
            settled = world.run(
                "API answer: recovery", lambda on: on.update_status(), config=config
            )
        assert settled.unit_status.name == "active", settled.unit_status

    example()
