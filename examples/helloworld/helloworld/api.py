"""Handlers of the helloworld API. Each is named by `x-bind-server` in apis/helloworld.yaml."""

from __future__ import annotations

from typing import Any

from werkzeug.datastructures import FileStorage

from macaron import add_error, apis

GREETINGS = {"en": "Hello", "fr": "Bonjour", "sv": "Hej"}

RhetoricalQuestion = add_error("RhetoricalQuestion", "RHETORICAL_QUESTION", 422)


def say_hello(name: str, lang: list[str], times: int, x_caller: str | None) -> Any:
    greetings = [f"{GREETINGS[code]}, {name}!" for code in lang] * times
    return apis.helloworld.Greeting(greetings=greetings, caller=x_caller)


def ask(question: Any) -> Any:
    if question.is_rhetorical():
        raise RhetoricalQuestion("No answer expected", user_message="That one needs no answer.")
    answer = "Yes." if question.text.lower().startswith(("is ", "are ", "do ", "does ", "can ")) else "42."
    return apis.helloworld.Answer(text=answer, question=question)


def upload(caption: str, file: FileStorage) -> Any:
    data = file.read()
    return {"caption": caption, "filename": file.filename, "content_type": file.mimetype, "size": len(data)}
