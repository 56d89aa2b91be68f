"""POST /v1/questions, over HTTP."""

from __future__ import annotations

from macaron_unit import Client


def test_a_yes_no_question_gets_yes(macaron_client: Client) -> None:
    answer = macaron_client.post("/v1/questions", json={"text": "Is it raining?"}).assert_dict({"text": "Yes."}, status=201)
    assert answer["question"]["text"] == "Is it raining?"


def test_other_questions_get_42(macaron_client: Client) -> None:
    macaron_client.post("/v1/questions", json={"text": "Why?", "tags": ["life"]}).assert_dict({"text": "42."}, status=201)


def test_a_rhetorical_question_is_refused(macaron_client: Client) -> None:
    error = macaron_client.post("/v1/questions", json={"text": "Who cares?!"}).assert_error(422, "RHETORICAL_QUESTION")
    assert error["user_message"] == "That one needs no answer."


def test_a_question_without_text_is_refused(macaron_client: Client) -> None:
    macaron_client.post("/v1/questions", json={"tags": []}).assert_error(400)


def test_a_body_that_is_not_json_is_refused(macaron_client: Client) -> None:
    macaron_client.post("/v1/questions", data=b"{not json", headers={"Content-Type": "application/json"}).assert_error(400)
