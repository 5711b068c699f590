r"""A real JVM reads exactly the values the hub was given, from the file spark8t writes.

The real charm (ops.testing) is configured and related with values that break a naive
`key=value` file (a password ending in `\`, `\u0041`, `C:\new`, a value starting with `=`,
multi-line PEM, non-ASCII); spark8t 1.6.0 then runs its own `spark_submit` for an account the
hub configured, with a stand-in `spark-submit` that keeps the `--properties-file` spark8t wrote;
a tiny Java program loads that file with `java.util.Properties` exactly as `spark-submit` does
(UTF-8 reader, then Spark's `trimExceptCRLF`) and prints every key and value. Each must equal
what the hub distributes (`get-config reveal=true`): nothing swallowed, nothing injected.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
from ops import testing

from tests import relations
from tests.charm.conftest import MODEL, make_context, workload
from tests.relations import S3_PAYLOAD

JAVA = shutil.which("java")
pytestmark = pytest.mark.skipif(
    JAVA is None, reason="no JVM on this machine (apt-get install openjdk-17-jdk-headless)"
)

LOADER = r"""
import java.io.*;
import java.nio.charset.StandardCharsets;
import java.util.*;

public class LoadProperties {
    public static void main(String[] args) throws Exception {
        Properties properties = new Properties();
        try (Reader reader = new InputStreamReader(
                new FileInputStream(args[0]), StandardCharsets.UTF_8)) {
            properties.load(reader);  // what Spark's Utils.getPropertiesFromFile does
        }
        HexFormat hex = HexFormat.of();
        for (String key : new TreeSet<>(properties.stringPropertyNames())) {
            String value = trimExceptCRLF(properties.getProperty(key));
            System.out.println(hex.formatHex(key.getBytes(StandardCharsets.UTF_8)) + " "
                + hex.formatHex(value.getBytes(StandardCharsets.UTF_8)));
        }
    }

    /** Spark's Utils.trimExceptCRLF, applied by spark-submit to every loaded value. */
    static String trimExceptCRLF(String text) {
        int start = 0, end = text.length();
        while (start < end && isTrimmed(text.charAt(start))) start++;
        while (end > start && isTrimmed(text.charAt(end - 1))) end--;
        return text.substring(start, end);
    }

    static boolean isTrimmed(char c) {
        return c <= ' ' && c != '\r' && c != '\n';
    }
}
"""

HOSTILE = {
    "spark.hadoop.a.password": "ends-with-a-backslash\\",
    "spark.hadoop.b.url": "jdbc:postgresql://db:5432/x?user=a\\b",
    "spark.hadoop.c.path": "C:\\new\\table\\u0041",
    "spark.hadoop.d.equals": "=starts=with=equals",
    "spark.hadoop.e.colon": ":starts:with:colon",
    "spark.hadoop.f.hash": "#not a comment !nor this",
    "spark.hadoop.g.unicode": "ümlaut ☃ 日本",
    "spark.hadoop.h.spaces": "inner  spaces  kept",
    "spark.driver.extraJavaOptions": "-Dlog4j.configuration=file:/etc/log4j.properties",
}
"""What spark-properties sets (tab aside, which `core.values` refuses): kept exactly."""


@pytest.fixture
def spark_home(tmp_path: Path) -> SimpleNamespace:
    """A SPARK_HOME whose `spark-submit` keeps a copy of the properties file it is given."""
    home = tmp_path / "spark"
    (home / "bin").mkdir(parents=True)
    (home / "conf").mkdir()
    (home / "conf" / "spark-defaults.conf").write_text("")
    kept = tmp_path / "spark-submit.properties"
    script = home / "bin" / "spark-submit"
    script.write_text(
        "#!/bin/sh\n"
        "while [ $# -gt 0 ]; do\n"
        f'  if [ "$1" = "--properties-file" ]; then cp "$2" "{kept}"; fi\n'
        "  shift\n"
        "done\n"
    )
    script.chmod(0o755)
    return SimpleNamespace(path=home, kept=kept)


def jvm_load(path: Path, tmp_path: Path) -> dict[str, str]:
    """Every key and value a real `java.util.Properties` reads from `path`."""
    source = tmp_path / "LoadProperties.java"
    source.write_text(LOADER)
    assert JAVA is not None
    output = subprocess.run(
        [JAVA, str(source), str(path)], capture_output=True, check=True, text=True, timeout=120
    ).stdout
    loaded = {}
    for line in output.splitlines():
        key, _, value = line.partition(" ")
        loaded[bytes.fromhex(key).decode()] = bytes.fromhex(value).decode()
    return loaded


def test_the_jvm_reads_exactly_what_the_hub_distributes(
    kube_server, spark8t, spark_home, tmp_path
):
    kube_server.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}})
    spark8t.create("alice", "team-a")
    # hostile but legitimate credentials: a backslash before the JDBC URL, a backslash-u
    links = [
        relations.s3(S3_PAYLOAD | {"secret-key": "s3cr3t\\u0041\\"}),
        relations.gcs(),
        relations.metastore({"password": "Pq8s\\"}),
    ]
    config = {"spark-properties": "\n".join(f"{k}={v}" for k, v in HOSTILE.items())}
    ctx = make_context()
    state = testing.State(
        leader=True,
        model=MODEL,
        storages={testing.Storage("hub-state")},
        containers={workload()},
        config=config,
        relations={link.relation for link in links},
        secrets={secret for link in links for secret in link.secrets},
    )
    out = ctx.run(ctx.on.config_changed(), state)
    assert out.unit_status == testing.ActiveStatus("1 accounts in sync")
    ctx.run(ctx.on.action("get-config", params={"reveal": True}), out)
    distributed = {
        key: row["value"]
        for key, row in json.loads(ctx.action_results["properties"]).items()  # type: ignore[index]
    }
    assert distributed["spark.hadoop.fs.s3a.secret.key"] == "s3cr3t\\u0041\\"
    assert distributed["spark.hadoop.javax.jdo.option.ConnectionPassword"] == "Pq8s\\"
    assert "\n" in distributed["spark.hadoop.fs.gs.auth.service.account.private.key"]
    for key, value in HOSTILE.items():
        assert distributed[key] == value

    from spark8t.domain import Defaults
    from spark8t.spark_interface import SparkDeployMode, SparkInterface

    account = spark8t.registry.get("team-a:alice")
    interface = SparkInterface(
        account,
        SimpleNamespace(kube_config_file=None),
        Defaults({"SPARK_HOME": str(spark_home.path)}),
    )
    interface.spark_submit(SparkDeployMode.CLIENT, [], None, [])
    seen = jvm_load(spark_home.kept, tmp_path)

    assert seen == distributed | {
        "spark.kubernetes.authenticate.driver.serviceAccountName": "alice",
        "spark.kubernetes.namespace": "team-a",
    }
