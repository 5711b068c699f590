"""The charm's configuration as a typed model, and the parsers of its structured options.

`HubConfig.from_options` is the one place that reads raw Juju config; every error it raises
names the option and, for multi-line options, the line, so that the blocked status can tell the
operator exactly what to fix.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.properties import is_property_key
from core.values import quoted_key, shorten, text_problem

MAX_CONCURRENT_WRITES_DEFAULT = 8
"""Secrets written at once by default (chosen from docs/benchmark.md)."""

_PATTERN_PART = re.compile(r"[a-z0-9*]([-a-z0-9.*]*[a-z0-9*])?")
IDENTITY_PREFIXES = ("spark.kubernetes.authenticate.", "spark.kubernetes.namespace")
"""Keys `spark-properties` may not set: who a job runs as, and where (see config.md)."""
SINGLE_LINE_OPTIONS = ("driver-pod-template", "executor-pod-template", "spark-image")


class ConfigError(ValueError):
    """A config option the hub cannot use; the message names the option and the fix."""


class AccountPattern(BaseModel):
    """One `namespace:account` pattern of `monitored-service-accounts`; `*` is a wildcard."""

    model_config = ConfigDict(frozen=True)

    namespace: str
    account: str

    def matches(self, namespace: str, account: str) -> bool:
        """Whether the account `namespace:account` is matched by this pattern."""
        return fnmatch.fnmatchcase(namespace, self.namespace) and fnmatch.fnmatchcase(
            account, self.account
        )

    def __str__(self) -> str:
        return f"{self.namespace}:{self.account}"


class Scope(BaseModel):
    """The accounts the hub serves: those matched by any pattern."""

    model_config = ConfigDict(frozen=True)

    patterns: tuple[AccountPattern, ...] = (AccountPattern(namespace="*", account="*"),)

    def includes(self, namespace: str, account: str) -> bool:
        """Whether the account is in scope."""
        return any(pattern.matches(namespace, account) for pattern in self.patterns)


RESERVED_NAMESPACES = ("kube-*", "default")
"""Namespaces refused for provided accounts unless `service-account-namespaces` names them."""


class AccountPolicy(BaseModel):
    """Where the hub may create Spark accounts for related charms, besides their own namespace.

    A requirer may always have an account created in the namespace it runs in (the provider
    checks that with the API); these options widen that, never narrow it.

    Attributes:
        namespaces: `service-account-namespaces` patterns (`*` is a wildcard); none by default.
        create_namespaces: `service-account-create-namespaces`: create a missing namespace.
        adopt_existing: `service-account-adopt-existing`: answer for accounts the hub did not
            create.
        share: `service-account-sharing`: let several relations have the same account.
    """

    model_config = ConfigDict(frozen=True)

    namespaces: tuple[str, ...] = ()
    create_namespaces: bool = False
    adopt_existing: bool = False
    share: bool = False

    def allows(self, namespace: str, *, reserved: bool) -> bool:
        """Whether the operator listed `namespace` for accounts.

        A reserved namespace (`kube-*`, `default`, the hub's own model, any Juju model) is
        allowed only when an entry names it exactly (no wildcard).
        """
        if reserved:
            return namespace in self.namespaces
        return any(fnmatch.fnmatchcase(namespace, pattern) for pattern in self.namespaces)

    @staticmethod
    def is_reserved_name(namespace: str) -> bool:
        """Whether the name alone makes the namespace reserved (`kube-*`, `default`)."""
        return any(fnmatch.fnmatchcase(namespace, pattern) for pattern in RESERVED_NAMESPACES)


class HubConfig(BaseModel):
    """The charm's config options (charmcraft.yaml `config`), validated."""

    model_config = ConfigDict(frozen=True)

    enable_dynamic_allocation: bool = False
    driver_pod_template: str = ""
    executor_pod_template: str = ""
    spark_image: str = ""
    spark_properties: dict[str, str] = Field(default_factory=dict)
    scope: Scope = Scope()
    metastore_database: str = "hive_metastore"
    hook_time_budget: float = Field(default=60.0, ge=10, le=3600)
    """Seconds a hook may spend on the Kubernetes API before it stops and says why."""
    max_concurrent_writes: int = Field(default=MAX_CONCURRENT_WRITES_DEFAULT, ge=1, le=16)
    account_policy: AccountPolicy = AccountPolicy()

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> HubConfig:
        """Build from Juju config (`self.config`).

        Raises:
            ConfigError: naming the option (and line or entry) that is wrong.
        """
        for option in SINGLE_LINE_OPTIONS:
            if problem := text_problem(str(options.get(option, "")).strip()):
                raise ConfigError(f"{option} {problem}: it must be one line of text")
        try:
            return cls(
                enable_dynamic_allocation=options.get("enable-dynamic-allocation", False),
                driver_pod_template=str(options.get("driver-pod-template", "")).strip(),
                executor_pod_template=str(options.get("executor-pod-template", "")).strip(),
                spark_image=str(options.get("spark-image", "")).strip(),
                spark_properties=parse_spark_properties(str(options.get("spark-properties", ""))),
                scope=parse_scope(str(options.get("monitored-service-accounts", "*:*"))),
                metastore_database=parse_database_name(
                    str(options.get("metastore-database-name", "hive_metastore"))
                ),
                hook_time_budget=options.get("hook-time-budget", 60),
                max_concurrent_writes=options.get(
                    "max-concurrent-writes", MAX_CONCURRENT_WRITES_DEFAULT
                ),
                account_policy=AccountPolicy(
                    namespaces=parse_namespace_patterns(
                        str(options.get("service-account-namespaces", ""))
                    ),
                    create_namespaces=options.get("service-account-create-namespaces", False),
                    adopt_existing=options.get("service-account-adopt-existing", False),
                    share=options.get("service-account-sharing", False),
                ),
            )
        except ValidationError as error:
            first = error.errors()[0]
            option = str(first["loc"][0]).replace("_", "-") if first["loc"] else "config"
            raise ConfigError(f"{option}: {first['msg']}") from None


def parse_spark_properties(text: str) -> dict[str, str]:
    """Parse `spark-properties`: one `key=value` per line; blank lines and `#` comments skipped.

    Lines end at a line feed only (a carriage return before it is dropped): any other line or
    paragraph separator stays in the value, where `core.values` refuses it. A key set twice,
    and the identity keys spark-client sets per account (`IDENTITY_PREFIXES`), are refused.

    Raises:
        ConfigError: naming the first bad line.
    """
    properties: dict[str, str] = {}
    lines: dict[str, int] = {}
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.removesuffix("\r").strip()
        if not line or line.startswith("#"):
            continue
        key, separator, value = line.partition("=")
        key = key.strip()
        if not separator:
            raise ConfigError(
                f"spark-properties line {number}: expected `spark.<name>=<value>`, found no `=`"
            )
        if not is_property_key(key):
            raise ConfigError(
                f"spark-properties line {number}: {quoted_key(key)} is not a Spark "
                "property key (`spark.` then letters, digits and `_*.-/@`)"
            )
        if key.startswith(IDENTITY_PREFIXES):
            raise ConfigError(
                f"spark-properties line {number}: `{key}` is an identity key, which spark-client "
                "sets for each account itself; remove it (see the charm's config reference)"
            )
        if key in lines:
            raise ConfigError(
                f"spark-properties lines {lines[key]} and {number} both set `{key}`: keep one"
            )
        lines[key] = number
        properties[key] = value.strip()
    return properties


def _entries(text: str) -> list[str]:
    """The non-empty entries of a comma- or newline-separated option, stripped."""
    return [entry.strip() for entry in re.split(r"[,\n]", text) if entry.strip()]


def parse_scope(text: str) -> Scope:
    """Parse `monitored-service-accounts`: comma- or newline-separated `namespace:account`.

    Raises:
        ConfigError: naming the first bad entry.
    """
    patterns: list[AccountPattern] = []
    for entry in _entries(text):
        namespace, separator, account = entry.partition(":")
        if (
            not separator
            or not _PATTERN_PART.fullmatch(namespace)
            or not _PATTERN_PART.fullmatch(account)
        ):
            raise ConfigError(
                f"monitored-service-accounts entry {shorten(entry)!r}: expected "
                "`namespace:account`, lower-case names, `*` as wildcard"
            )
        patterns.append(AccountPattern(namespace=namespace, account=account))
    if not patterns:
        raise ConfigError("monitored-service-accounts is empty: use `*:*` for all")
    return Scope(patterns=tuple(patterns))


def parse_namespace_patterns(text: str) -> tuple[str, ...]:
    """Parse `service-account-namespaces`: comma- or newline-separated namespace patterns.

    Empty (the default) lists none: requirers then get accounts in their own namespace only.

    Raises:
        ConfigError: naming the first bad entry.
    """
    patterns = _entries(text)
    for entry in patterns:
        if len(entry) > 63 or not _PATTERN_PART.fullmatch(entry):
            raise ConfigError(
                f"service-account-namespaces entry {shorten(entry)!r}: expected a namespace "
                "name, lower-case, `*` as wildcard"
            )
    return tuple(patterns)


def parse_database_name(text: str) -> str:
    """Validate `metastore-database-name` (a PostgreSQL identifier).

    Raises:
        ConfigError: when it is not a plain identifier.
    """
    name = text.strip()
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise ConfigError(
            f"metastore-database-name {shorten(name)!r}: use lower-case letters, "
            "digits and `_`, starting with a letter"
        )
    return name
