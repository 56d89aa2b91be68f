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


class PetAdopted(MacaronException):
    status = 409
    code = "PET_ADOPTED"


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


def adopt_pet(body: Any, petId: int) -> Any:
    # body is a CardPayment or a CashPayment model, picked by its "method" and checked as that kind.
    pet = get_pet(petId)
    if pet.status == "adopted":
        raise PetAdopted(f"pet {petId} is already adopted")
    pet.status = "adopted"
    return apis.petstore.Adoption(pet=pet, payment=body)  # the payment goes back as the kind it came in
