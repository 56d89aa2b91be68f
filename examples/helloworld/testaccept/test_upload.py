"""POST /v1/upload (multipart/form-data), over HTTP."""

from __future__ import annotations

from macaron_unit import Client


def test_upload_reports_what_was_received(macaron_client: Client) -> None:
    reply = macaron_client.post("/v1/upload", data={"caption": "a note"}, files={"file": ("note.txt", b"hello, world", "text/plain")})
    reply.assert_dict({"caption": "a note", "filename": "note.txt", "content_type": "text/plain", "size": 12})


def test_upload_without_file_is_refused(macaron_client: Client) -> None:
    macaron_client.post("/v1/upload", data={"caption": "no file"}, files={"other": ("x", b"")}).assert_error(400)
