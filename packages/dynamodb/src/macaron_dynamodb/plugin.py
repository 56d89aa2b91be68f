"""The macaron plugin: ``persist_model`` for definitions marked ``x-persist``, and the ``macaron dynamodb`` commands."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from macaron import hookimpl
from macaron.config import Config
from macaron.models import apis, model_info, model_name
from macaron.spec import Api, SpecError
from macaron_dynamodb.codec import DecoderFactory
from macaron_dynamodb.settings import BACKEND, NotOurs, parse

if TYPE_CHECKING:
    import click

    from macaron_dynamodb.persistence import Table


def _definitions(model: type, api: Api | None) -> dict[str, dict[str, Any]]:
    # $refs inside a definition resolve among the API's definitions, the non-object ones included.
    if api is not None:
        return api.definitions
    try:
        models = getattr(apis, model_info(model).api)  # type: ignore[attr-defined]
    except AttributeError:
        return {}
    return {model_name(cls): model_info(cls).schema for cls in models}


def _property_pointer(definition: dict[str, Any], prop: str) -> str:
    """Where ``prop`` is declared in a definition: its properties, or the allOf part of a subtype that adds it."""
    for index, part in enumerate(definition.get("allOf", ())):
        if isinstance(part, dict) and prop in (part.get("properties") or {}):
            return f"/allOf/{index}/properties/{prop}"
    return f"/properties/{prop}"


def _check_polymorphism(model: type, name: str, where: str) -> None:
    """A persisted hierarchy has one table, its base's: subtypes inherit it and save themselves there."""
    for ancestor in model.__mro__[1:]:
        if "x-persist" in (vars(ancestor).get("_schema") or {}):
            raise SpecError(
                where,
                f"/definitions/{name}/x-persist",
                f"{name} extends {model_name(ancestor)}, which is persisted: a subtype is stored in its base's table (remove this x-persist)",  # type: ignore[attr-defined]
            )
    strangers = sorted(model_name(sub) for sub in getattr(model, "_subtypes", {}).values() if not issubclass(sub, model))
    if strangers:
        raise SpecError(
            where,
            f"/definitions/{name}/x-persist",
            f"{name} is a oneOf with a discriminator, and {', '.join(strangers)} do not extend it, so they could not save themselves: "
            f"persist each alternative, or make {name} a base its subtypes extend with allOf",
        )


def persist(model: type, definition: dict[str, Any], config: Config, api: Api | None = None) -> Table:
    """Give ``model`` its table and methods; raises SpecError or ConfigError at start-up."""
    # pynamodb and botocore load here, not with the plugin: every `macaron` command and
    # every service without x-persist would pay half a second for them otherwise.
    from macaron_dynamodb.backend import Settings, backend_for
    from macaron_dynamodb.persistence import METHODS, Table, attach

    definitions = _definitions(model, api)
    decoders = DecoderFactory(definitions)
    properties = decoders.properties(definition)
    name = getattr(model, "_name", model.__name__)
    where = str(api.file) if api is not None else f"API '{getattr(model, '_api', '?')}'"
    _check_polymorphism(model, name, where)
    try:
        spec = parse(definition.get("x-persist"), model, properties, where)
    except NotOurs as exc:
        raise SpecError(
            where,
            f"/definitions/{name}/x-persist/backend",
            f"backend '{exc}' is not installed (macaron-dynamodb handles backend '{BACKEND}')",
        ) from None
    # The subtypes save themselves too: none of their properties may hide a method either.
    for cls in dict.fromkeys([model, *getattr(model, "_subtypes", {}).values()]):
        own = properties if cls is model else decoders.properties(definitions.get(model_name(cls), {}))
        attributes = {getattr(cls, "_attributes", {}).get(prop, prop) for prop in own} | set(getattr(cls, "_attributes", {}))
        clashes = sorted(set(METHODS) & (attributes | set(own)))
        if clashes:
            cls_name = getattr(cls, "_name", name)
            raise SpecError(
                where,
                f"/definitions/{cls_name}{_property_pointer(definitions.get(cls_name, definition), clashes[0])}",
                f"propert{'ies' if len(clashes) > 1 else 'y'} {', '.join(clashes)} would hide the persistence method"
                f"{'s' if len(clashes) > 1 else ''} of the same name: rename {'them' if len(clashes) > 1 else 'it'}",
            )
    table = Table(model, spec, backend_for(Settings.from_config(config)), decoders.item_decoder(definition, name), definitions)  # type: ignore[arg-type]
    attach(model, table)  # type: ignore[arg-type]
    return table


@hookimpl(trylast=True)
def persist_model(model: type, definition: dict[str, Any], api: Api, config: Config) -> bool | None:
    # trylast: another backend installed alongside gets the first look at every x-persist.
    persist(model, definition, config, api)
    return True


@hookimpl
def register_commands(cli: click.Group) -> None:
    from macaron_dynamodb.cli import dynamodb

    cli.add_command(dynamodb)
