"""The built-in endpoints: GET /ping and GET /version, and errors for unknown routes."""

from __future__ import annotations

from macaron_unit import Client


def test_ping(macaron_client: Client) -> None:
    macaron_client.assert_is_up()


def test_version(macaron_client: Client) -> None:
    version = macaron_client.assert_version("helloworld")
    assert "helloworld" in version["apis"], version


def test_unknown_route_is_a_404_error(macaron_client: Client) -> None:
    macaron_client.get("/v1/nowhere").assert_error(404)


def test_wrong_method_is_a_405_error(macaron_client: Client) -> None:
    macaron_client.delete("/v1/hello/Ada").assert_error(405)
