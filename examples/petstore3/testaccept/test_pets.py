"""The OpenAPI 3.0 petstore over HTTP: servers base path, query arrays, a JSON body, nullable, errors."""

from __future__ import annotations

from macaron_unit import Client


def test_a_pet_added_can_be_read_back(macaron_client: Client) -> None:
    pet = macaron_client.post("/v1/pets", json={"name": "Rex", "tag": None}).assert_dict({"name": "Rex", "status": "available"}, status=201)
    macaron_client.get(f"/v1/pets/{pet['id']}").assert_dict({"id": pet["id"], "name": "Rex"})


def test_pets_are_listed_by_status(macaron_client: Client) -> None:
    adopted = macaron_client.post("/v1/pets", json={"name": "Tom", "status": "adopted"}).assert_dict({"status": "adopted"}, status=201)
    reply = macaron_client.get("/v1/pets", params={"status": ["adopted"]})
    listed = reply.assert_json()
    assert adopted["id"] in [pet["id"] for pet in listed]
    assert all(pet["status"] == "adopted" for pet in listed)


def test_bad_input_is_a_400_naming_every_problem(macaron_client: Client) -> None:
    error = macaron_client.post("/v1/pets", json={"name": "", "status": "lost"}).assert_error(400)
    assert {problem["field"] for problem in error["errors"]} == {"/body/name", "/body/status"}, error
    macaron_client.get("/v1/pets", params={"limit": 0}).assert_error(400)


def test_an_unknown_pet_is_a_404(macaron_client: Client) -> None:
    macaron_client.get("/v1/pets/999999").assert_error(404, "PET_NOT_FOUND")
