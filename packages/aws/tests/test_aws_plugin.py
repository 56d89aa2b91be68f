"""After `pip install macaron-aws`, macaron knows the target: plugins list, deploy --list, deploy beanstalk --help."""

from __future__ import annotations

import json
import subprocess
import sys

MACARON = [sys.executable, "-m", "macaron"]


def macaron(*args: str) -> str:
    done = subprocess.run([*MACARON, *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_plugins_list_shows_the_plugin_its_hooks_and_its_target() -> None:
    aws = next(plugin for plugin in json.loads(macaron("plugins", "list", "--json")) if plugin["name"] == "aws")
    assert aws["distribution"] == "macaron-aws" and aws["module"] == "macaron_aws.plugin"
    assert aws["hooks"] == ["deploy_options", "on_deploy", "register_deploy_targets"]
    assert aws["deploy_targets"] == ["beanstalk"]


def test_the_target_has_its_own_options() -> None:
    rows = [line.split() for line in macaron("deploy", "--list").splitlines()[2:]]
    assert ["beanstalk", "aws", "macaron-aws"] in rows
    help_text = macaron("deploy", "beanstalk", "--help")
    for option in ("--rollback", "--cleanup", "--keep", "--keep-failed", "--rehearse", "--dry-run", "--json"):
        assert option in help_text
