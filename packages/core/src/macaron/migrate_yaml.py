"""PyMacaron's YAML (pym-config and specs) for ``macaron migrate``: found by structure, edited in place.

The files are composed with PyYAML (nodes carry their positions), so a key is a mapping
key and a value a scalar, never a substring of a comment or a description. Edits cut
and splice the original text at those positions, so comments, quoting and layout
survive; there is no round-trip dump (PyYAML's would drop every comment).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import yaml

# Spec values (x-decorate-server, x-decorate-request, error handlers) naming PyMacaron callables.
SPEC_VALUES = {
    "pymacaron.auth.requires_auth": "macaron.auth.requires_auth",
    "pymacaron.auth.optional_auth": "macaron.auth.optional_auth",
    "pymacaron.auth.add_auth": "macaron.auth.add_auth",
    "pymacaron_core.auth.add_auth": "macaron.auth.add_auth",
}
# PyMacaron deploy keys with a one-to-one setting in a deploy plugin's section (docs/deploy.md).
DEPLOY_MOVES = {
    "aws_instance_type": ("beanstalk", "instance_type"),
    "aws_hosts_min": ("beanstalk", "min_hosts"),
    "aws_hosts_max": ("beanstalk", "max_hosts"),
    "aws_cert_arn": ("beanstalk", "certificate"),
    "gcp_region": ("cloudrun", "region"),
    "gcp_memory": ("cloudrun", "memory"),
    "gcp_request_concurrency": ("cloudrun", "concurrency"),
}
# The others, and what to do with them (why they are not moved).
DEPLOY_ADVICE = {
    "docker_repo": "the image goes to deploy.<target>.registry, a host/path (a Docker Hub organisation is docker.io/<name>); which target is yours to say",
    "aws_user": "no equivalent: the deploy runs with your AWS credentials (botocore's chain); delete it",
    "aws_keypair": "no equivalent: macaron's Beanstalk hosts take no SSH key pair; delete it",
    "aws_zone_id": "no equivalent (PyMacaron did not use it either); delete it",
    "aws_region": "the region of both the deploy and DynamoDB: set deploy.beanstalk.region and/or dynamodb.region, then delete it",
    "aws_default_region": "the region of both the deploy and DynamoDB: set deploy.beanstalk.region and/or dynamodb.region, then delete it",
    "aws_access_key_id": "credentials never go in macaron's config: put them in the environment (AWS_ACCESS_KEY_ID...) and delete it",
    "aws_secret_access_key": "credentials never go in macaron's config: put them in the environment (AWS_SECRET_ACCESS_KEY...) and delete it",
}
DEPLOY_PREFIXES = ("docker_", "aws_", "gcp_", "deploy_target")


@dataclass(frozen=True)
class Found:
    path: tuple[str, ...]  # the keys leading to it
    line: int  # 1-based
    key: yaml.Node
    value: yaml.Node


def compose(text: str) -> yaml.Node | None:
    return yaml.compose(text, Loader=yaml.SafeLoader)


def pairs(node: yaml.Node | None, path: tuple[str, ...] = ()) -> Iterator[Found]:
    """Every key/value pair of a composed document, depth first, with its path."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            name = str(key.value) if isinstance(key, yaml.ScalarNode) else "?"
            yield Found((*path, name), key.start_mark.line + 1, key, value)
            yield from pairs(value, (*path, name))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from pairs(item, (*path, str(index)))


def scalars(node: yaml.Node | None) -> Iterator[yaml.ScalarNode]:
    if isinstance(node, yaml.ScalarNode):
        yield node
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield from scalars(key)
            yield from scalars(value)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from scalars(item)


def _splice(text: str, edits: list[tuple[int, int, str]]) -> str:
    for start, end, replacement in sorted(edits, reverse=True):
        text = text[:start] + replacement + text[end:]
    return text


def rewrite_spec(text: str) -> tuple[str, list[tuple[int, str]]]:
    """The spec with PyMacaron callables renamed, and (line, value) of every other scalar still naming PyMacaron."""
    edits = []
    left = []
    for scalar in scalars(compose(text)):
        if scalar.value in SPEC_VALUES:
            new = SPEC_VALUES[scalar.value]
            quote = scalar.style if scalar.style in ("'", '"') else ""
            edits.append((scalar.start_mark.index, scalar.end_mark.index, f"{quote}{new}{quote}"))
        elif isinstance(scalar.value, str) and "pymacaron" in scalar.value:
            left.append((scalar.start_mark.line + 1, scalar.value))
    return _splice(text, edits), left


@dataclass
class ConfigReview:
    text: str  # the config with the movable deploy keys moved
    moved: list[tuple[int, str, str]]  # (line, old key, new dotted key)
    advice: list[tuple[int, str, str, str]]  # (line, key, what to do, doc section)


CREDENTIAL_KEYS = ("aws_region", "aws_default_region", "aws_access_key_id", "aws_secret_access_key")


def _line_span(text: str, found: Found) -> tuple[int, int]:
    """The text offsets of the whole lines holding a top-level key and its (scalar) value."""
    start = text.rfind("\n", 0, found.key.start_mark.index) + 1
    end_mark = found.value.end_mark
    if end_mark.column == 0:
        return start, end_mark.index
    newline = text.find("\n", end_mark.index)
    return start, len(text) if newline == -1 else newline + 1


def _move_deploy_keys(text: str, review: ConfigReview) -> str:
    found = list(pairs(compose(text)))
    if any(f.path == ("deploy",) for f in found):
        return text  # merging into an existing section is the user's: the keys are listed instead
    moves: dict[str, list[tuple[Found, str]]] = {}
    for item in found:
        if len(item.path) == 1 and item.path[0] in DEPLOY_MOVES and isinstance(item.value, yaml.ScalarNode):
            target, setting = DEPLOY_MOVES[item.path[0]]
            moves.setdefault(target, []).append((item, setting))
    if not moves:
        return text
    cuts = [(*_line_span(text, item), "") for items in moves.values() for item, _ in items]
    section = ["", "# PyMacaron's deploy keys, moved by macaron migrate (docs/deploy.md)", "deploy:"]
    for target, items in moves.items():
        section.append(f"  {target}:")
        for item, setting in items:
            value = text[item.value.start_mark.index : item.value.end_mark.index]
            section.append(f"    {setting}: {value}  # was {item.path[0]}")
            review.moved.append((item.line, item.path[0], f"deploy.{target}.{setting}"))
    return _splice(text, cuts).rstrip("\n") + "\n" + "\n".join(section) + "\n"


def review_config(text: str) -> ConfigReview:
    """Move the deploy keys that have a macaron setting into ``deploy:``; say what to do with the other PyMacaron keys.

    Lines in ``advice`` are those of the rewritten text, the one the user will read.
    """
    review = ConfigReview(text, [], [])
    review.text = _move_deploy_keys(text, review)
    found = list(pairs(compose(review.text)))
    jwt = next((f for f in found if len(f.path) == 1 and f.path[0].startswith("jwt_")), None)
    if jwt is not None:
        what = "JWT settings: the issuer is now checked, the leeway is 10 s (PyMacaron: 300 s), the token cookie is off"
        review.advice.append((jwt.line, jwt.path[0], what, "auth"))
    for item in found:
        key = item.path[-1]
        if item.path == ("with_async",):
            what = "'with_async': the server starts no worker and no redis: run 'macaron worker' and set async.broker_url, then delete it"
            review.advice.append((item.line, key, what, "async"))
        elif key.startswith(DEPLOY_PREFIXES) and item.path[:1] != ("deploy",):
            where = ".".join(item.path)
            if key in DEPLOY_MOVES:
                what = f"it is deploy.{'.'.join(DEPLOY_MOVES[key])} now; move it there by hand"
            else:
                what = DEPLOY_ADVICE.get(key, "move it to the deploy plugin's 'deploy:' section")
            label, section = ("AWS key", "dynamodb") if key in CREDENTIAL_KEYS else ("deploy key", "deploy")
            review.advice.append((item.line, where, f"{label} '{where}': {what}", section))
    return review
