"""The petstore's handlers. Pets are kept in memory, per server process: an example, not a store."""

from __future__ import annotations

from itertools import count
from typing import Any

from macaron import apis
from macaron.errors import MacaronException

_ids = count(1)
_pets: dict[int, Any] = {}


class PetNotFound(MacaronException):
    status = 404
    code = "PET_NOT_FOUND"


def list_pets(status: list[str] | None = None, limit: int = 20) -> list[Any]:
    pets = [pet for pet in _pets.values() if not status or pet.status in status]
    return pets[:limit]


def add_pet(body: Any) -> Any:
    pet = apis.petstore.Pet(id=next(_ids), name=body.name, tag=body.tag, status=body.status or "available")
    _pets[pet.id] = pet
    return pet


def get_pet(petId: int) -> Any:  # arguments carry the spec's parameter names
    if petId not in _pets:
        raise PetNotFound(f"no pet {petId}")
    return _pets[petId]
