"""What every reader shares: turning a provider's data into a `SourceResult`, safely.

This module owns the wording of `Incomplete` and `Invalid` for relation data, and the guarantee
that reading a relation never raises into the charm: `guarded` turns an unexpected exception
into `Invalid`, and logs only the exception's type and where it happened — never its message,
which may quote relation data (pydantic's does).
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import ops

from core.connections import Connection, FieldError, MissingFieldsError
from core.inputs import Incomplete, Invalid

logger = logging.getLogger(__name__)

ModelT = TypeVar("ModelT", bound=Connection)
ResultT = TypeVar("ResultT")


def provider_name(relation: ops.Relation) -> str:
    """The related application's name, for messages."""
    return relation.app.name if relation.app else "the provider"


def evaluate(
    model: type[ModelT], data: Mapping[str, Any], endpoint: str, relation: ops.Relation
) -> ModelT | Incomplete | Invalid:
    """Parse `data` into `model`, or say why the hub cannot use it yet (or at all)."""
    try:
        return model.from_relation(data)
    except MissingFieldsError as missing:
        return Incomplete(endpoint, waiting_for(missing.fields, relation))
    except FieldError as error:
        return invalid_field(endpoint, error, relation)


def waiting_for(fields: tuple[str, ...] | list[str], relation: ops.Relation) -> str:
    """The reason of an `Incomplete`: which fields the provider has not delivered."""
    return (
        f"waiting for {', '.join(f'`{name}`' for name in fields)} from {provider_name(relation)}"
    )


def invalid_field(endpoint: str, error: FieldError, relation: ops.Relation) -> Invalid:
    """An `Invalid` naming the relation field, the provider, and what is wrong with it."""
    return Invalid(endpoint, f"`{error.field}` from {provider_name(relation)}: {error.problem}")


def guarded(
    endpoint: str, read: Callable[[], ResultT], fallback: Callable[[Invalid], ResultT]
) -> ResultT:
    """Run `read`; on any unexpected exception, log its type and place and return `fallback`.

    Args:
        endpoint: the integration being read, for the message.
        read: the reader.
        fallback: builds the result from the `Invalid` describing the failure.
    """
    try:
        return read()
    except Exception as error:  # noqa: BLE001 - a reader must never fail the hook
        frame = traceback.extract_tb(error.__traceback__)[-1]
        logger.error(
            "%s: %s while reading relation data (%s:%s)",
            endpoint,
            type(error).__name__,
            frame.filename.rsplit("/", 1)[-1],
            frame.lineno,
        )
        return fallback(
            Invalid(
                endpoint,
                f"unexpected {type(error).__name__} reading the relation data; "
                "see `juju debug-log`",
            )
        )


class ShieldedRelationChanged:
    """Mixin for a library requirer: nothing a provider sends makes its handlers error the hook.

    The libraries parse the provider's data (and read its Juju secret) in their own
    relation-changed and secret-changed handlers, before the hub's pass. A secret published but
    not readable yet raises `ModelError`; malformed data (non-JSON `requests`, wrong types)
    raises whatever the library's parser raises (pydantic's `ValidationError`, `TypeError`,
    ...). Either way the handler's error is logged — its type and place, never its message,
    which may quote the data — and dropped: the pass reads the same relation right after, and
    reports it as incomplete or invalid, for that relation only.
    """

    def _on_relation_changed_event(self, event: ops.RelationChangedEvent) -> None:
        library: Any = super()
        _shielded(lambda: library._on_relation_changed_event(event), event.relation.name)

    def _on_secret_changed_event(self, event: ops.SecretChangedEvent) -> None:
        library: Any = super()
        _shielded(lambda: library._on_secret_changed_event(event), "secret-changed")


def _shielded(handler: Callable[[], object], where: str) -> None:
    """Run a library's handler; log and drop any exception (see `ShieldedRelationChanged`)."""
    try:
        handler()
    except ops.ModelError as error:  # SecretNotFoundError is a ModelError
        logger.info(
            "%s: provider data not readable yet (%s); the pass will wait",
            where,
            type(error).__name__,
        )
    except Exception as error:  # noqa: BLE001 - a provider's data must never fail the hook
        frame = traceback.extract_tb(error.__traceback__)[-1]
        logger.warning(
            "%s: the relation library failed on the provider's data (%s at %s:%s); "
            "the pass reports the relation",
            where,
            type(error).__name__,
            frame.filename.rsplit("/", 1)[-1],
            frame.lineno,
        )
