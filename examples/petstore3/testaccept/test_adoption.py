"""Polymorphism over HTTP: an adoption is paid by card or in cash, and the "method" says which schema checks the payment."""

from __future__ import annotations

from typing import Any

from macaron_unit import Client


def new_pet(client: Client, name: str) -> int:
    pet: dict[str, Any] = client.post("/v1/pets", json={"name": name}).assert_dict({"status": "available"}, status=201)
    return int(pet["id"])


def test_a_pet_is_adopted_by_card_or_in_cash_and_the_payment_comes_back_as_sent(macaron_client: Client) -> None:
    card = {"method": "card", "holder": "Ann", "last4": "4242"}
    adoption = macaron_client.post(f"/v1/pets/{new_pet(macaron_client, 'Bella')}/adoption", json=card).assert_dict(status=201)
    assert adoption["payment"] == card
    assert adoption["pet"]["status"] == "adopted"

    cash = {"method": "cash", "amount": 50}
    adoption = macaron_client.post(f"/v1/pets/{new_pet(macaron_client, 'Max')}/adoption", json=cash).assert_dict(status=201)
    assert adoption["payment"] == cash


def test_a_payment_is_checked_as_the_kind_its_method_names(macaron_client: Client) -> None:
    url = f"/v1/pets/{new_pet(macaron_client, 'Luna')}/adoption"
    error = macaron_client.post(url, json={"method": "cheque", "amount": 50}).assert_error(400, "INVALID_PARAMETER")
    assert error["errors"] == [{"field": "/body/method", "message": '"cheque" is not one of "card", "cash" (the discriminator of Payment)'}]
    # Checked as a card payment: the card's own rules apply, and a cash field is unknown there.
    error = macaron_client.post(url, json={"method": "card", "holder": "Ann", "last4": "42", "amount": 5}).assert_error(400)
    assert {problem["field"] for problem in error["errors"]} == {"/body/last4", "/body/amount"}
    error = macaron_client.post(url, json={"method": "cash"}).assert_error(400)
    assert error["errors"] == [{"field": "/body/amount", "message": "is required"}]
    # Nothing was accepted: the pet is still available.
    macaron_client.get(url.removesuffix("/adoption")).assert_dict({"status": "available"})


def test_a_pet_is_adopted_once(macaron_client: Client) -> None:
    url = f"/v1/pets/{new_pet(macaron_client, 'Rocky')}/adoption"
    macaron_client.post(url, json={"method": "cash", "amount": 10}).assert_status(201)
    macaron_client.post(url, json={"method": "cash", "amount": 10}).assert_error(409, "PET_ADOPTED")
    macaron_client.post("/v1/pets/999999/adoption", json={"method": "cash", "amount": 10}).assert_error(404, "PET_NOT_FOUND")
