"""Bank resolvers: which bank a call means when it names none.

A resolver maps the acting identity and the identity it acts for to a bank id (as the
caller would name it; the facade then validates it, checks access and applies the
tenant namespace). Configured by the ``identity:`` section:

* ``convention`` (default): the subject of the call is the ``on_behalf_of`` identity
  when set, else the actor; its bank is ``"{type}-{id}"`` (``user:alice`` ->
  ``user-alice``). A declared agent acting for itself uses its ``default_bank``.
* ``config``: the explicit ``identity.banks`` table, principal pattern -> bank id.
* ``module:Class``: your own class, built with ``identity.options`` as keyword
  arguments, whose ``resolve(actor, on_behalf_of)`` returns a bank id or ``None``
  (it may be a coroutine function, e.g. to ask a directory service).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Awaitable, Mapping
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from astrocyte.errors import ConfigError
from astrocyte.identity.patterns import fill, matches

if TYPE_CHECKING:
    from astrocyte.config.schema import AstrocyteConfig
    from astrocyte.identity.context import ActorIdentity


@runtime_checkable
class BankResolver(Protocol):
    """Maps (actor, on-behalf-of) identities to the bank a call works on."""

    def resolve(
        self, actor: ActorIdentity | None, on_behalf_of: ActorIdentity | None
    ) -> str | Awaitable[str | None] | None:
        """The bank id for this caller, or ``None`` when there is no default."""
        ...


class ConventionResolver:
    """``{type}-{id}`` of the subject (the on-behalf-of identity, else the actor); a
    declared agent acting for itself uses its ``default_bank``."""

    def __init__(self, default_banks: Mapping[str, str] | None = None) -> None:
        self._default_banks = dict(default_banks or {})

    def resolve(
        self, actor: ActorIdentity | None, on_behalf_of: ActorIdentity | None
    ) -> str | None:
        """See :class:`ConventionResolver`."""
        if on_behalf_of is not None:
            return f"{on_behalf_of.type}-{on_behalf_of.id}"
        if actor is None:
            return None
        if actor.type == "agent" and actor.id in self._default_banks:
            return self._default_banks[actor.id]
        return f"{actor.type}-{actor.id}"


class ConfigResolver:
    """An explicit table, principal pattern -> bank id (``{id}`` / ``{type}`` allowed).

    The on-behalf-of principal is looked up when the call is delegated (an agent acting
    for a user works in the user's bank, never silently in its own), else the actor.
    An exact principal wins over patterns; patterns are tried in table order. A
    declared agent acting for itself that is not in the table uses its
    ``default_bank``.
    """

    def __init__(
        self, banks: Mapping[str, str], default_banks: Mapping[str, str] | None = None
    ) -> None:
        self._banks = dict(banks)
        self._default_banks = dict(default_banks or {})

    def resolve(
        self, actor: ActorIdentity | None, on_behalf_of: ActorIdentity | None
    ) -> str | None:
        """See :class:`ConfigResolver`."""
        subject = on_behalf_of if on_behalf_of is not None else actor
        if subject is None:
            return None
        found = self._lookup(subject)
        if found is None and on_behalf_of is None and subject.type == "agent":
            return self._default_banks.get(subject.id)
        return found

    def _lookup(self, subject: ActorIdentity) -> str | None:
        principal = subject.principal
        template = self._banks.get(principal)
        if template is None:
            template = next(
                (bank for pattern, bank in self._banks.items() if matches(pattern, principal)),
                None,
            )
        if template is None:
            return None
        return fill(template, actor_type=subject.type, actor_id=subject.id)


def build_resolver(config: AstrocyteConfig) -> BankResolver:
    """The resolver ``config.identity`` asks for."""
    identity = config.identity
    default_banks = {
        name: agent.default_bank
        for name, agent in config.agents.items()
        if agent.default_bank is not None
    }
    if identity.resolver == "convention":
        return ConventionResolver(default_banks)
    if identity.resolver == "config":
        return ConfigResolver(identity.banks, default_banks)
    return _custom(identity.resolver, identity.options)


def _custom(path: str, options: Mapping[str, object]) -> BankResolver:
    module_name, _, attr = path.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError("identity.resolver", f"cannot import {path!r}: {exc}") from None
    if not callable(factory):
        raise ConfigError("identity.resolver", f"{path!r} is not a class or factory")
    try:
        resolver = factory(**options)
    except TypeError as exc:
        raise ConfigError("identity.options", f"bad options for {path!r}: {exc}") from None
    if not isinstance(resolver, BankResolver):
        raise ConfigError(
            "identity.resolver",
            f"{path!r} has no resolve(actor, on_behalf_of) method",
            fix="implement astrocyte.identity.BankResolver",
        )
    return resolver


async def resolve_bank(
    resolver: BankResolver, actor: ActorIdentity | None, on_behalf_of: ActorIdentity | None
) -> str | None:
    """Run ``resolver`` (plain or coroutine) and check it returned a string or None."""
    result = resolver.resolve(actor, on_behalf_of)
    if inspect.isawaitable(result):
        result = await result
    if result is not None and not isinstance(result, str):
        raise ConfigError(
            "identity.resolver",
            f"the resolver returned {type(result).__name__}, not a bank id string or None",
        )
    return result
