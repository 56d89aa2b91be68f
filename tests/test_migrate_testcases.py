"""``macaron migrate`` on PyMacaron test cases: each assertion of the table, and what stays a to-do."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("libcst")

from macaron.migrate import Note, rewrite_python


def migrate(source: str) -> tuple[str, list[Note]]:
    notes: list[Note] = []
    return rewrite_python(Path("testaccept/test_x.py"), textwrap.dedent(source), notes), notes


def body(call: str, header: str = "from pymacaron.test import PyMacaronTestCase\n\n\nclass T(PyMacaronTestCase):\n") -> str:
    out, notes = migrate(f"{header}    def test_it(self):\n        {call}\n")
    assert not notes, [note.what for note in notes]
    return out.splitlines()[-1].strip()


@pytest.mark.parametrize(
    ("pymacaron", "macaron"),
    [
        ("self.assertGetReturnJson('v1/a')", "self.client.get('v1/a').assert_json()"),
        (
            "self.assertGetReturnJson('v1/a', 201, 'Bearer x', verify_ssl=True)",
            "self.client.get('v1/a', headers={\"Authorization\": 'Bearer x'}).assert_json(201)",
        ),
        ("self.assertDeleteReturnJson('v1/a', 204)", "self.client.delete('v1/a').assert_json(204)"),
        ("self.assertPostReturnJson('v1/a', {'k': 1})", "self.client.post('v1/a', json={'k': 1}).assert_json()"),
        ("self.assertPostReturnJson('v1/a', 'raw')", "self.client.post('v1/a', data='raw').assert_json()"),
        ("self.assertGetReturnDict('v1/a', {'k': 1})", "self.client.get('v1/a').assert_dict({'k': 1})"),
        ("self.assertPostReturnDict('v1/a', d, {'k': 1}, 201)", "self.client.post('v1/a', json=d).assert_dict({'k': 1}, status=201)"),
        ("self.assertGetReturnOk('ping')", "self.client.get('ping').assert_ok()"),
        ("self.assertPostReturnOk('v1/a', d, auth=t)", "self.client.post('v1/a', json=d, headers={\"Authorization\": t}).assert_ok()"),
        ("self.assertGetReturnError('v1/a', 404, 'NOT_FOUND')", "self.client.get('v1/a').assert_error(404, 'NOT_FOUND')"),
        ("self.assertPostReturnError('v1/a', d, 422, 'BAD')", "self.client.post('v1/a', json=d).assert_error(422, 'BAD')"),
        ("j = self.assertCallReturnJson('PUT', 'v1/a', d, status=201)", "j = self.client.request('PUT', 'v1/a', json=d).assert_json(201)"),
        ("self.assertCallReturnDict('GET', 'v1/a', {'k': 1})", "self.client.request('GET', 'v1/a').assert_dict({'k': 1})"),
        ("self.assertCallReturnOk('DELETE', 'v1/a')", "self.client.request('DELETE', 'v1/a').assert_ok()"),
        (
            "self.assertCallReturnError('GET', 'v1/a', 401, 'TOKEN_INVALID', None, 'Bearer x')",
            "self.client.request('GET', 'v1/a', headers={\"Authorization\": 'Bearer x'}).assert_error(401, 'TOKEN_INVALID')",
        ),
        (
            "self.assertCallReturnHtml('GET', 'doc')",
            "self.client.request('GET', 'doc', allow_redirects=True).assert_text(200, content_type=\"text/html\")",
        ),
        (
            "self.assertCallReturnText('GET', 't', status=201)",
            "self.client.request('GET', 't', allow_redirects=True).assert_text(201, content_type=\"text/plain\")",
        ),
        ("url = self.assertCallReturnRedirect('GET', 'go')", "url = self.client.request('GET', 'go').assert_redirect(status=302)"),
        ("self.assertHasPing()", "self.client.assert_is_up()"),
        ("j = self.assertHasVersion(verify_ssl=True)", "j = self.client.assert_version()"),
    ],
)
def test_each_assertion_becomes_a_client_call(pymacaron: str, macaron: str) -> None:
    assert body(pymacaron) == macaron


def test_a_1x_test_case_keeps_its_class_and_its_setup_but_the_targeting() -> None:
    out, notes = migrate(
        """
        import os
        from pymacaron_unit import testcase


        class HelloTests(testcase.PyMacaronTestCase):

            def setUp(self):
                super(HelloTests, self).setUp()
                self.maxDiff = None
                self.host = os.environ.get('PYM_SERVER_HOST', '127.0.0.1')
                self.port, self.token = 8080, os.environ.get('PYM_JWT_TOKEN')

            def test_auth(self):
                # the whole 401 family, then a 200 with a token
                self.assertHasAuthVersion()
        """
    )
    assert not notes
    assert "from macaron_unit import MacaronTestCase\n" in out and "class HelloTests(MacaronTestCase):" in out
    assert "super(HelloTests, self).setUp()\n        self.maxDiff = None\n\n" in out and "PYM_" not in out
    assert "# the whole 401 family" in out
    assert out.endswith(
        '        self.client.assert_requires_auth("GET", "/auth/version")\n'
        '        self.client.get("/auth/version", token=self.token).assert_json()\n'
    )


def test_what_has_no_equivalent_is_listed_and_left_as_it_was() -> None:
    source = """
    from pymacaron.test import PyMacaronTestCase, load_port_host_token


    class T(PyMacaronTestCase):
        def test_it(self):
            self.assertCallReturnJson('GET', 'a', None, allow_error=True)
            self.assertHasPing(verify_ssl=False)
            j = self.assertHasAuthVersion()
            self.assertIsVersion(j)
            self.assertGetReturnJson('a', **options)
    """
    out, notes = migrate(source)
    assert out == textwrap.dedent(source)  # one name it cannot convert: the import stays, and so does the class
    assert [(note.line, note.section) for note in notes] == [
        (2, "tests"),
        (7, "tests"),
        (8, "tests"),
        (9, "tests"),
        (10, "tests"),
        (11, "tests"),
    ]
    assert "allow_error=True" in notes[1].what and "verify=False" in notes[2].what and "*args" in notes[5].what


def test_calls_outside_a_test_case_are_not_touched() -> None:
    source = "class Helper:\n    def check(self):\n        return self.assertGetReturnJson('a')\n"
    assert migrate(source) == (source, [])


def test_the_example_of_docs_migrating_md_is_what_migrate_writes() -> None:
    docs = (Path(__file__).resolve().parents[1] / "docs" / "migrating.md").read_text()
    tests = docs[docs.index("\n## Tests\n") :]
    before, after = re.findall(r"```python\n(.*?)```", tests, re.S)[:2]
    out, notes = migrate(before)
    assert not notes
    assert out == after
