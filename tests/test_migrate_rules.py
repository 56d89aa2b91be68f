"""``macaron migrate``'s rules one by one: server.py parsed, YAML edited by structure, PyMacaron's error and logging idioms."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

pytest.importorskip("libcst")

from macaron.migrate import Note, _server_only_boots, plan, rewrite_python
from macaron.migrate_yaml import review_config, rewrite_spec

BOOTS = """
import os
from flask import Flask
from pymacaron import API, letsgo

app = Flask(__name__)


def start(port, debug):
    \"\"\"Serve the apis.\"\"\"
    api = API(app, port=port, debug=debug)
    api.load_apis(os.path.join(os.path.dirname(os.path.realpath(__file__)), 'apis'))
    api.start(serve=['hello'])


letsgo(__name__, callback=start)
"""


@pytest.mark.parametrize(
    ("change", "boots"),
    [
        ("", True),
        ("sys.path.append('.')\n", True),
        ("if __name__ == '__main__':\n    letsgo(__name__, callback=start)\n", True),
        # an error_reporter is code the user wrote: move it to macaron.yaml first
        ("def report(title, body):\n    send(title)\n", False),
        ("@app.route('/extra')\ndef extra():\n    return 'extra'\n", False),
        ("open('/tmp/started', 'w').write('yes')\n", False),
        ("import requests\nrequests.get('https://example.com')\n", False),
        ("x = compute()\n", False),
    ],
)
def test_server_py_goes_only_when_it_only_boots(change: str, boots: bool) -> None:
    assert _server_only_boots(BOOTS + change) is boots


def test_server_py_with_a_reporter_in_api_is_kept() -> None:
    assert not _server_only_boots(BOOTS.replace("debug=debug)", "debug=debug, error_reporter=report)"))
    assert not _server_only_boots("from pymacaron import letsgo\nletsgo(__name__)\n")  # no API(...): not PyMacaron's boot file


def test_spec_values_are_rewritten_where_they_are_values_only() -> None:
    spec = textwrap.dedent(
        """\
        paths:
          /me:
            get:
              # was pymacaron.auth.requires_auth, see the description
              description: "protected by pymacaron.auth.requires_auth"
              x-decorate-server: 'pymacaron.auth.requires_auth'
              x-decorate-request: pymacaron_core.auth.add_auth
              responses: {'200': {description: ok, x-decorate-server: pymacaron.auth.optional_auth}}
        """
    )
    new, left = rewrite_spec(spec)
    assert "# was pymacaron.auth.requires_auth, see the description" in new
    assert "x-decorate-server: 'macaron.auth.requires_auth'" in new  # quoting kept
    assert "x-decorate-request: macaron.auth.add_auth" in new
    assert "x-decorate-server: macaron.auth.optional_auth}}" in new
    assert left == [(5, "protected by pymacaron.auth.requires_auth")]  # listed, not rewritten


def test_deploy_keys_move_into_deploy_or_are_listed_at_any_depth() -> None:
    config = textwrap.dedent(
        """\
        name: hello
        aws_instance_type: 't3.small'   # the web hosts
        gcp_memory: 1Gi
        live:
          docker_repo: hellocorp
        aws_keypair: k
        """
    )
    review = review_config(config)
    assert review.text.startswith("name: hello\nlive:\n  docker_repo: hellocorp\naws_keypair: k\n")
    assert (
        "deploy:\n  beanstalk:\n    instance_type: 't3.small'  # was aws_instance_type\n  cloudrun:\n    memory: 1Gi  # was gcp_memory\n"
        in review.text
    )
    assert review.moved == [(2, "aws_instance_type", "deploy.beanstalk.instance_type"), (3, "gcp_memory", "deploy.cloudrun.memory")]
    # lines of the rewritten file, which the user reads
    assert [(line, key) for line, key, _what, _section in review.advice] == [(3, "live.docker_repo"), (4, "aws_keypair")]
    assert review_config(review.text).text == review.text  # a second run moves nothing


def test_an_existing_deploy_section_is_not_merged_into() -> None:
    review = review_config("deploy:\n  beanstalk: {region: eu-west-1}\naws_hosts_max: 4\nwith_async: true\n")
    assert review.text.endswith("aws_hosts_max: 4\nwith_async: true\n") and not review.moved
    advice = {key: (line, what, section) for line, key, what, section in review.advice}
    assert advice["aws_hosts_max"] == (
        3,
        "deploy key 'aws_hosts_max': it is deploy.beanstalk.max_hosts now; move it there by hand",
        "deploy",
    )
    assert advice["with_async"][0] == 4 and "macaron worker" in advice["with_async"][1] and advice["with_async"][2] == "async"


def migrate(source: str, errors: dict[str, str] | None = None) -> tuple[str, list[Note]]:
    notes: list[Note] = []
    return rewrite_python(Path("svc/mod.py"), textwrap.dedent(source), notes, errors), notes


def test_report_error_from_pymacaron_exceptions_goes_to_macaron_reporting() -> None:
    out, notes = migrate(
        """\
        from pymacaron.exceptions import PyMacaronException, report_error  # errors

        report_error("lost", data={"n": 1}, caught=exc)
        """
    )
    assert not notes
    assert out == (
        "from macaron.errors import MacaronException  # errors\n"
        "from macaron.reporting import report_error\n"
        "\n"
        'report_error("lost", data={"n": 1}, exception=exc)\n'
    )


def test_add_error_classes_live_where_they_are_made() -> None:
    made, notes = migrate(
        """\
        from pymacaron.exceptions import add_error

        add_error(name='Gone', code='GONE', status=410)
        exceptionclass = add_error('Late', 'LATE', 408)
        globals()['Late'] = exceptionclass
        """
    )
    assert not notes
    assert "Gone = add_error(name='Gone', code='GONE', status=410)\n" in made
    assert "Late = exceptionclass\n" in made
    used, notes = migrate("from pymacaron.exceptions import Gone, PyMacaronException\n", {"Gone": "svc.errors"})
    assert not notes
    assert used == "from macaron.errors import MacaronException\nfrom svc.errors import Gone\n"


def test_plan_finds_add_error_classes_across_the_service(tmp_path: Path) -> None:
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "__init__.py").write_text("")
    (tmp_path / "svc" / "errors.py").write_text(
        "from pymacaron.exceptions import add_error\n\nadd_error(name='Gone', code='GONE', status=410)\n"
    )
    (tmp_path / "svc" / "api.py").write_text("import svc.errors\nfrom pymacaron.exceptions import Gone\n")
    (tmp_path / "svc" / "own.py").write_text(
        "from pymacaron.exceptions import add_error\nadd_error(name='Mine', code='MINE', status=400)\nfrom pymacaron.exceptions import Mine\n"
    )
    result = plan(tmp_path)
    assert result.writes[tmp_path / "svc" / "api.py"] == "import svc.errors\nfrom svc.errors import Gone\n"
    # the module making the class defines it: it imports it from nowhere
    own = result.writes[tmp_path / "svc" / "own.py"]
    assert own == "from macaron.errors import add_error\nMine = add_error(name='Mine', code='MINE', status=400)\n"
    assert not result.notes
    assert "Gone = add_error(" in result.writes[tmp_path / "svc" / "errors.py"]


def test_pymlogger_is_logging_and_persistence_is_macaron_dynamodb() -> None:
    out, notes = migrate(
        """\
        from pymacaron.log import pymlogger
        from pymacaron_dynamodb import PersistentSwaggerObject
        from pymacaron import apipool

        log = pymlogger(__name__)


        class PersistentUser(PersistentSwaggerObject):
            table_name = 'users'
            primary_key = 'id'


        def rename(user_id, name):
            user = apipool.shop.User.load_from_db(user_id)
            user.name = name
            user.save_to_db()
        """
    )
    assert not notes
    assert out.startswith("import logging\nfrom macaron import apis\n\nlog = logging.getLogger(__name__)\n")
    assert "class PersistentUser:\n" in out
    assert "user = apis.shop.User.load(user_id)" in out and "user.save()" in out
