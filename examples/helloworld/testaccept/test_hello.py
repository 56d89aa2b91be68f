"""GET /v1/hello/{name}, over HTTP."""

from __future__ import annotations

from macaron_unit import Client


def test_hello_in_english_by_default(macaron_client: Client) -> None:
    macaron_client.get("/v1/hello/Ada").assert_dict({"greetings": ["Hello, Ada!"]})


def test_hello_in_several_languages_several_times(macaron_client: Client) -> None:
    reply = macaron_client.get("/v1/hello/Ada", params={"lang": "fr,sv", "times": 2})
    reply.assert_dict({"greetings": ["Bonjour, Ada!", "Hej, Ada!", "Bonjour, Ada!", "Hej, Ada!"]})


def test_hello_names_the_caller_from_a_header(macaron_client: Client) -> None:
    macaron_client.get("/v1/hello/Ada", headers={"X-Caller": "Bob"}).assert_dict({"caller": "Bob"})


def test_hello_refuses_an_unknown_language_and_too_many_times(macaron_client: Client) -> None:
    error = macaron_client.get("/v1/hello/Ada", params={"lang": "de", "times": 9}).assert_error(400, "INVALID_PARAMETER")
    assert len(error["errors"]) == 2, error
