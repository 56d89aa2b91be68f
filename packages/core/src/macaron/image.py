"""Container images of a service: built from a clean commit, reproducibly, then run, tested and pushed.

The image holds exactly what runs where the deployer built it: the service's committed files (no tests), and
the Python distributions it needs, pinned in ``requirements.lock`` and copied from the deployer's environment,
so nothing is resolved or downloaded at build time and the build has no RUN step at all. Two builds of one
commit give the same image ID: every file and the image's dates are set to the commit's time, byte code is
compiled with hashes instead of modification times, and files are copied in sorted order.

Deploy plugins (macaron-aws, macaron-gke) build on :func:`build_image`, :func:`push_image` and
:func:`run_image`; the commands are ``macaron image build|base|run``.
"""

from __future__ import annotations

import compileall
import datetime
import hashlib
import io
import json
import os
import py_compile
import re
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml
from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from macaron.config import CONFIG_FILE

LOCK_FILE = "requirements.lock"
REQUIREMENTS_FILE = "requirements.txt"
# Where things live inside the image.
SITE = "/app/site"
SERVICE = "/app/service"
USER = "10001:10001"
BUILDERS = ("podman", "buildah", "docker")
# Never copied into an image: tests, version control, caches, virtual environments, local secrets.
EXCLUDED_PARTS = frozenset(
    {"tests", "testaccept", ".git", "__pycache__", ".venv", "venv", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis",
     ".schemathesis", ".nox", ".tox", "node_modules"}
)  # fmt: skip
EXCLUDED_NAME = re.compile(r"^(\.env(\..*)?|.*\.pyc|conftest\.py|pytest\.ini|\.dockerignore|\.containerignore|Containerfile|Dockerfile)$")


class ImageError(Exception):
    """An image cannot be built, run or pushed; the message says why and what to do, in one line."""


# -- the container tool -----------------------------------------------------------------


@dataclass(frozen=True)
class ContainerTool:
    """podman, buildah or docker, found on PATH."""

    name: str
    path: str

    def run(self, *args: str, what: str, check: bool = True, capture: bool = True, timeout: float | None = None) -> subprocess.CompletedProcess[str]:
        try:
            done = subprocess.run([self.path, *args], capture_output=capture, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise ImageError(f"{what}: '{self.name} {args[0]}' did not finish in {timeout:g} s") from exc
        if check and done.returncode != 0:
            raise ImageError(f"{what} failed ({self.name} {args[0]}, exit status {done.returncode}): {_last_lines(done.stderr or done.stdout)}")
        return done

    def exists(self, image: str) -> bool:
        verb = ("inspect", "--type", "image") if self.name == "buildah" else ("image", "inspect")
        return self.run(*verb, image, what="inspect", check=False).returncode == 0

    @property
    def runner(self) -> ContainerTool:
        """The tool that runs containers: buildah builds, but podman runs."""
        if self.name != "buildah":
            return self
        return find_tool("podman")


def find_tool(preferred: str | None = None) -> ContainerTool:
    """The container tool to use: ``preferred`` (or ``MACARON_CONTAINER_TOOL``), else the first of podman, buildah, docker."""
    wanted = preferred or os.environ.get("MACARON_CONTAINER_TOOL") or None
    if wanted is not None and wanted not in BUILDERS:
        raise ImageError(f"unknown container tool '{wanted}': use one of {', '.join(BUILDERS)}")
    for name in [wanted] if wanted else list(BUILDERS):
        path = shutil.which(name)
        if path:
            return ContainerTool(name, path)
    if wanted:
        raise ImageError(f"{wanted} is not installed: install it (Debian: apt-get install {_debian_package(wanted)}) or choose another with --builder")
    raise ImageError("no container tool installed: install podman (Debian: apt-get install podman buildah runc), or docker")


def _debian_package(tool: str) -> str:
    return {"docker": "docker.io", "podman": "podman runc", "buildah": "buildah podman runc"}[tool]


def _last_lines(text: str, count: int = 3) -> str:
    lines = [line.strip() for line in (text or "").strip().splitlines() if line.strip()]
    return " | ".join(lines[-count:]) or "(no output)"


# -- what goes into the image -------------------------------------------------------------


@dataclass(frozen=True)
class Commit:
    """The git commit an image is built from."""

    revision: str
    epoch: int
    dirty: bool

    @property
    def created(self) -> str:
        return datetime.datetime.fromtimestamp(self.epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ImageError(f"{root}: git {args[0]} failed: {_last_lines(done.stderr)}")
    return done.stdout


def service_commit(root: Path, allow_dirty: bool = False) -> Commit | None:
    """The commit of the service in ``root``; a tree with uncommitted changes is refused unless ``allow_dirty``.

    Untracked files do not make a tree dirty: they never go into the image."""
    if shutil.which("git") is None or subprocess.run(["git", "-C", str(root), "rev-parse"], capture_output=True).returncode != 0:
        if allow_dirty:
            return None
        raise ImageError(f"{root}: not in a git repository; an image is built from a commit (or pass --allow-dirty)")
    changed = _git(root, "status", "--porcelain", "--untracked-files=no", "--", ".").strip()
    if changed and not allow_dirty:
        first = changed.splitlines()[0].strip()
        raise ImageError(f"{root}: uncommitted changes ({first}...); commit them, or pass --allow-dirty (the image's revision label would lie)")
    revision, epoch = _git(root, "log", "-1", "--format=%H %ct").split()
    return Commit(revision, int(epoch), bool(changed))


def service_files(root: Path, commit: Commit | None) -> list[Path]:
    """The service's files that belong in the image, relative to ``root``, sorted: tracked by git, no tests or caches."""
    if commit is not None:
        listed = [Path(name) for name in _git(root, "ls-files", "-z", "--", ".").split("\0") if name]
    else:
        listed = [path.relative_to(root) for path in root.rglob("*") if path.is_file()]
    kept = [
        path
        for path in listed
        if not EXCLUDED_PARTS.intersection(path.parts)
        and not EXCLUDED_NAME.match(path.name)
        and not path.name.startswith("test_")
        and (root / path).is_file()
    ]
    return sorted(kept, key=lambda path: path.as_posix())


def read_service_config(root: Path) -> dict[str, Any]:
    """macaron.yaml as written: an image needs the name, version and image settings, never the secrets."""
    file = root / CONFIG_FILE
    try:
        values = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ImageError(f"{file}: no such file; is {root} a macaron service?") from None
    except yaml.YAMLError as exc:
        raise ImageError(f"{file}: not valid YAML: {exc}") from exc
    if not isinstance(values, dict) or not values.get("name"):
        raise ImageError(f"{file}: 'name' is required")
    image = values.get("image") or {}
    if not isinstance(image, dict):
        raise ImageError(f"{file}: 'image' must be a mapping (base, requires, tag)")
    unknown = sorted(set(image) - {"base", "requires", "tag", "builder"})
    if unknown:
        raise ImageError(f"{file}: unknown key(s) in 'image': {', '.join(unknown)} (known: base, builder, requires, tag)")
    return values


def secret_names(root: Path, env: str | None = None) -> list[str]:
    """The names in ``env_secrets`` of macaron.yaml and of its overlay for ``env``: what a container must be given."""
    names = list(read_service_config(root).get("env_secrets") or [])
    overlay = root / f"macaron.{env}.yaml" if env else None
    if overlay is not None and overlay.exists():
        values = yaml.safe_load(overlay.read_text(encoding="utf-8")) or {}
        names += list(values.get("env_secrets") or []) if isinstance(values, dict) else []
    return list(dict.fromkeys(str(name) for name in names))


# -- pinned dependencies --------------------------------------------------------------------


def _requirement_lines(text: str, source: Path) -> list[Requirement]:
    requirements = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            raise ImageError(f"{source}:{number}: pip options ('{line}') are not read; name the distributions only")
        try:
            requirements.append(Requirement(line))
        except InvalidRequirement as exc:
            raise ImageError(f"{source}:{number}: not a requirement: {exc}") from exc
    return requirements


def _roots(root: Path, settings: Mapping[str, Any]) -> list[Requirement]:
    roots = [Requirement("macaron-core")]
    file = root / REQUIREMENTS_FILE
    if file.exists():
        roots += _requirement_lines(file.read_text(encoding="utf-8"), file)
    extra = settings.get("requires") or []
    if not isinstance(extra, list) or not all(isinstance(item, str) for item in extra):
        raise ImageError(f"{root / CONFIG_FILE}: image.requires must be a list of distribution names")
    roots += _requirement_lines("\n".join(extra), root / CONFIG_FILE)
    return roots


def resolve_installed(roots: Iterable[Requirement]) -> dict[str, str]:
    """The distributions ``roots`` need, with their dependencies, at the versions installed here: name -> version."""
    found: dict[str, str] = {}
    pending = [(requirement, "") for requirement in roots]
    environment: dict[str, str] = {key: str(value) for key, value in default_environment().items()}
    while pending:
        requirement, extra = pending.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({**environment, "extra": extra}):
            continue
        name = canonicalize_name(requirement.name)
        try:
            dist = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            raise ImageError(
                f"'{requirement.name}' is needed by the image but not installed here: pip install '{requirement}' (the image holds what runs here)"
            ) from None
        if requirement.specifier and not requirement.specifier.contains(dist.version, prereleases=True):
            raise ImageError(f"'{requirement}' is needed but {dist.metadata['Name']} {dist.version} is installed here")
        for wanted_extra in sorted(requirement.extras):
            pending += [(Requirement(line), wanted_extra) for line in dist.requires or [] if "extra" in line]
        if name in found:
            continue
        found[name] = dist.version
        pending += [(Requirement(line), "") for line in dist.requires or [] if "extra ==" not in line.replace('"', "'").replace("extra==", "extra ==")]
    return dict(sorted(found.items()))


def read_lock(file: Path) -> dict[str, str]:
    pins: dict[str, str] = {}
    for requirement in _requirement_lines(file.read_text(encoding="utf-8"), file):
        specs = list(requirement.specifier)
        if len(specs) != 1 or specs[0].operator != "==":
            raise ImageError(f"{file}: '{requirement}' is not pinned with ==")
        pins[canonicalize_name(requirement.name)] = specs[0].version
    return pins


def write_lock(file: Path, pins: Mapping[str, str]) -> None:
    lines = [
        "# Written by 'macaron image build' from the environment it ran in; commit it.",
        "# The image holds exactly these versions. Delete this file to pin again.",
        *[f"{name}=={version}" for name, version in sorted(pins.items())],
    ]
    file.write_text("\n".join(lines) + "\n", encoding="utf-8")


def check_lock(pins: Mapping[str, str], lock: Path) -> None:
    """Every pinned version must be the one installed here, since that is what goes into the image."""
    wrong = []
    for name, version in pins.items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            wrong.append(f"{name}=={version} (not installed)")
            continue
        if installed != version:
            wrong.append(f"{name}=={version} (installed: {installed})")
    if wrong:
        raise ImageError(f"{lock}: this environment differs from the lock: {', '.join(wrong)}; run pip install -r {lock.name}, or delete it to pin again")


# -- the build context ----------------------------------------------------------------------


def _editable_source(dist: metadata.Distribution) -> Path | None:
    raw = dist.read_text("direct_url.json")
    if not raw:
        return None
    info = json.loads(raw)
    if not info.get("dir_info", {}).get("editable") or not str(info.get("url", "")).startswith("file://"):
        return None
    return Path(info["url"][len("file://") :])


def _copy_installed(dist: metadata.Distribution, site: Path) -> None:
    base = Path(str(dist.locate_file(""))).resolve()
    for entry in sorted(dist.files or [], key=str):
        source = Path(str(dist.locate_file(entry))).resolve()
        if "__pycache__" in entry.parts or source.suffix == ".pyc" or not source.is_relative_to(base) or not source.is_file():
            continue  # byte code is compiled afresh; scripts in bin/ are not needed: the image runs 'python3 -m'
        target = site / source.relative_to(base)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


def _wheel_from_source(source: Path, name: str, workdir: Path, epoch: int) -> Path:
    out = workdir / f"wheel-{name}"
    out.mkdir()
    environment = {**os.environ, "SOURCE_DATE_EPOCH": str(epoch), "PIP_NO_INPUT": "1"}
    command = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out), str(source)]
    done = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
    if done.returncode != 0:
        raise ImageError(f"{name}: building a wheel from its source {source} failed: {_last_lines(done.stderr)}")
    return next(out.glob("*.whl"))


def _unpack_wheel(wheel: Path, site: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        for member in sorted(archive.namelist()):
            parts = Path(member).parts
            if member.endswith("/") or "__pycache__" in parts or member.endswith(".pyc"):
                continue
            if parts[0].endswith(".data"):
                if len(parts) < 3 or parts[1] not in ("purelib", "platlib"):
                    continue  # scripts, headers, data: not needed to serve
                parts = parts[2:]
            target = site.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(archive.read(member))


def assemble_site(pins: Mapping[str, str], site: Path, workdir: Path, epoch: int) -> None:
    """Copy every pinned distribution into ``site``, as it is installed here; editable ones are built into a wheel first."""
    for name in sorted(pins):
        dist = metadata.distribution(name)
        source = _editable_source(dist)
        if source is None:
            _copy_installed(dist, site)
        else:
            _unpack_wheel(_wheel_from_source(source, name, workdir, epoch), site)


def _compile(folder: Path, inside: str) -> None:
    # Hash-checked byte code does not depend on file times, and a non-root, read-only image could not write it later.
    ok = compileall.compile_dir(str(folder), ddir=inside, quiet=2, force=True, workers=0, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    if not ok:
        raise ImageError(f"{folder}: some Python files do not compile (a syntax error?); run 'python -m compileall {folder}'")


def _fix_times(folder: Path, epoch: int) -> None:
    for path in sorted(folder.rglob("*"), reverse=True):
        os.utime(path, (epoch, epoch), follow_symlinks=False)
    os.utime(folder, (epoch, epoch))


def containerfile(base: str, labels: Mapping[str, str], version: str) -> str:
    """The Containerfile of a service image: no RUN step, so nothing is fetched or resolved at build time."""
    label_lines = " \\\n      ".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    return f"""\
# Written by 'macaron image build'; see docs/deploy.md.
FROM {base}
LABEL {label_lines}
ENV PYTHONPATH={SITE} \\
    PYTHONUNBUFFERED=1 \\
    PYTHONDONTWRITEBYTECODE=1 \\
    PORT=8080 \\
    MACARON_VERSION="{version}"
COPY site {SITE}
COPY service {SERVICE}
WORKDIR {SERVICE}
USER {USER}
EXPOSE 8080
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s \\
  CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/ping' % os.environ['PORT'], timeout=2)"]
# The server's master (granian by default, or gunicorn: serve.server in macaron.yaml) is PID 1 and handles SIGTERM itself: in-flight requests finish, then it exits.
ENTRYPOINT ["python3", "-m", "macaron", "serve", "--prod"]
CMD ["--host", "0.0.0.0", "{SERVICE}"]
"""


# -- building ----------------------------------------------------------------------------


@dataclass
class BuiltImage:
    """What :func:`build_image` made; ``--json`` prints it."""

    image: str
    id: str
    name: str
    version: str
    revision: str | None
    created: str | None
    base: str
    builder: str
    size: int
    seconds: float
    lock: str
    locked_now: bool
    pushed: str | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_base() -> str:
    """The slim official image of the Python that runs here: the copied distributions were built for it."""
    return f"docker.io/library/python:{sys.version_info.major}.{sys.version_info.minor}-slim-bookworm"


def build_image(
    path: str | os.PathLike[str],
    *,
    tag: str | None = None,
    base: str | None = None,
    builder: str | None = None,
    version: str | None = None,
    allow_dirty: bool = False,
    push: str | None = None,
    no_cache: bool = False,
    progress: Callable[[str], None] | None = None,
) -> BuiltImage:
    """Build the image of the service in ``path`` and return what was built.

    ``version`` defaults as ``macaron deploy`` computes it (MACARON_VERSION, else ``version`` in macaron.yaml).
    """
    root = Path(path).resolve()
    say = progress or (lambda _line: None)
    steps: list[dict[str, Any]] = []
    started = time.monotonic()

    def step(name: str, since: float) -> None:
        seconds = round(time.monotonic() - since, 2)
        steps.append({"step": name, "seconds": seconds})
        say(f"{name} ({seconds:.1f} s)")

    values = read_service_config(root)
    settings: dict[str, Any] = values.get("image") or {}
    tool = find_tool(builder or settings.get("builder"))
    commit = service_commit(root, allow_dirty)
    name = str(values["name"])
    version = version or os.environ.get("MACARON_VERSION") or str(values.get("version") or "local")
    tag = tag or settings.get("tag") or f"{name}:{version}"
    base = base or settings.get("base") or default_base()
    if not tool.exists(base):
        raise ImageError(f"base image '{base}' is not in {tool.name}'s storage: pull it, or build one with 'macaron image base' and pass --base")

    since = time.monotonic()
    lock = root / LOCK_FILE
    locked_now = not lock.exists()
    if locked_now:
        pins = resolve_installed(_roots(root, settings))
        write_lock(lock, pins)
    else:
        pins = read_lock(lock)
        check_lock(pins, lock)
    step(f"pinned {len(pins)} distributions in {LOCK_FILE}" + (" (written now: commit it)" if locked_now else ""), since)

    epoch = commit.epoch if commit is not None else int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    with tempfile.TemporaryDirectory(prefix="macaron-image-") as scratch:
        context = Path(scratch) / "context"
        site, service = context / "site", context / "service"
        site.mkdir(parents=True)
        since = time.monotonic()
        assemble_site(pins, site, Path(scratch), epoch)
        _compile(site, SITE)
        files = service_files(root, commit)
        for relative in files:
            target = service / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / relative, target)
        shutil.copyfile(lock, service / LOCK_FILE)
        _compile(service, SERVICE)
        labels = {
            "org.opencontainers.image.title": name,
            "org.opencontainers.image.version": version,
            "org.opencontainers.image.revision": commit.revision if commit else "unknown",
            "org.opencontainers.image.created": commit.created if commit else "unknown",
            "org.opencontainers.image.base.name": base,
        }
        (context / "Containerfile").write_text(containerfile(base, labels, version), encoding="utf-8")
        _fix_times(context, epoch)
        step(f"assembled {len(files)} service files and {len(pins)} distributions", since)

        since = time.monotonic()
        iidfile = Path(scratch) / "iid"  # written by the builder; the ID that counts is the normalized one
        tool.run(*_build_args(tool, context, tag, epoch, iidfile, no_cache), what=f"building {tag} on {base}")
        image = _full_name(tool, tag)
        image_id = normalize_image(tool.runner, image, Path(scratch))
        step(f"built {tag} with {tool.name}", since)
    built = BuiltImage(
        image=image,
        id=image_id,
        name=name,
        version=version,
        revision=commit.revision if commit else None,
        created=commit.created if commit else None,
        base=base,
        builder=tool.name,
        size=image_size(tool, image),
        seconds=0.0,
        lock=str(lock),
        locked_now=locked_now,
        steps=steps,
    )
    if push:
        since = time.monotonic()
        built.pushed = push_image(image, push, builder=tool.name)
        step(f"pushed {built.pushed}", since)
    built.seconds = round(time.monotonic() - started, 2)
    return built


def _build_args(tool: ContainerTool, context: Path, tag: str, epoch: int, iidfile: Path, no_cache: bool = False) -> list[str]:
    common = ["-f", str(context / "Containerfile"), "-t", tag, "--iidfile", str(iidfile), *(["--no-cache"] if no_cache else [])]
    if tool.name == "docker":
        # BuildKit reads SOURCE_DATE_EPOCH for the image's dates; the files' times are set in the context already.
        return ["build", *common, "--build-arg", f"SOURCE_DATE_EPOCH={epoch}", str(context)]
    verb = ["bud"] if tool.name == "buildah" else ["build"]
    # --timestamp fixes the image's dates and every file's time; chroot isolation needs no runtime: there is no RUN step.
    return [*verb, *common, "--format", "docker", "--timestamp", str(epoch), "--isolation", "chroot", "--layers=false", str(context)]


# Set by the builders from the build container's random ID and host name: the only parts of an image that two
# builds of one commit do not share. Blanked, so that the image ID depends on the commit alone.
VOLATILE_CONFIG = (("container",), ("container_config", "Hostname"), ("config", "Hostname"))


def normalize_image(tool: ContainerTool, image: str, scratch: Path) -> str:
    """Rewrite ``image`` without the build container's identity; return the new image ID.

    The layers are the builder's, untouched; only the image's config (a JSON document) is rewritten."""
    archive, fixed = scratch / "built.tar", scratch / "fixed.tar"
    archive_format = [] if tool.name == "docker" else ["--format", "docker-archive"]
    tool.run("save", *archive_format, "-o", str(archive), image, what=f"saving {image}")
    with tarfile.open(archive) as source:
        manifest = json.loads(_member(source, "manifest.json"))
        config_name = manifest[0]["Config"]
        config = json.loads(_member(source, config_name))
        for path in VOLATILE_CONFIG:
            holder = config
            for key in path[:-1]:
                holder = holder.get(key) or {}
            if path[-1] in holder:
                holder[path[-1]] = "" if len(path) > 1 else None
        config.pop("container", None)
        data = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
        digest = hashlib.sha256(data).hexdigest()
        manifest[0]["Config"] = f"{digest}.json"
        manifest[0]["RepoTags"] = [image.removeprefix("localhost/") if tool.name == "docker" else image]
        with tarfile.open(fixed, "w", format=tarfile.PAX_FORMAT) as target:
            for member in source.getmembers():
                if member.name in (config_name, "manifest.json", "repositories"):
                    continue
                member.mtime = 0
                target.addfile(member, source.extractfile(member) if member.isfile() else None)
            for name, content in ((f"{digest}.json", data), ("manifest.json", json.dumps(manifest).encode())):
                info = tarfile.TarInfo(name)
                info.size = len(content)
                target.addfile(info, io.BytesIO(content))
    old = tool.run("image", "inspect", "--format", "{{.Id}}", image, what=f"inspecting {image}").stdout.strip()
    tool.run("load", "-q", "-i", str(fixed), what=f"loading {image}")
    if old.removeprefix("sha256:") != digest:
        tool.run("rmi", old, what="removing the unnormalized image", check=False)
    return digest


def _member(archive: tarfile.TarFile, name: str) -> bytes:
    handle = archive.extractfile(name)
    if handle is None:
        raise ImageError(f"the saved image has no {name}")
    return handle.read()


def _full_name(tool: ContainerTool, tag: str) -> str:
    if tool.name == "docker" or "/" in tag.split(":", 1)[0]:
        return tag
    return f"localhost/{tag}"


def image_size(tool: ContainerTool, image: str) -> int:
    runner = tool.runner
    done = runner.run("image", "inspect", "--format", "{{.Size}}", image, what=f"inspecting {image}")
    try:
        return int(done.stdout.strip())
    except ValueError:
        return 0


def image_labels(image: str, builder: str | None = None) -> dict[str, str]:
    tool = find_tool(builder).runner
    done = tool.run("image", "inspect", "--format", "{{json .Labels}}", image, what=f"inspecting {image}")
    labels: dict[str, str] = json.loads(done.stdout or "{}") or {}
    return labels


# -- pushing -------------------------------------------------------------------------------


def _is_local(registry: str) -> bool:
    host = registry.split("/", 1)[0].rsplit(":", 1)[0]
    return host in ("localhost", "127.0.0.1", "[::1]")


def push_image(image: str, registry: str, *, builder: str | None = None) -> str:
    """Push ``image`` to ``registry`` (``host[:port][/prefix]``) and return the pushed name.

    A registry on this machine is spoken to over plain HTTP, as docker does by default for 127.0.0.0/8."""
    tool = find_tool(builder)
    if tool.name == "buildah":
        tool = tool.runner
    short = image.rsplit("/", 1)[-1]
    remote = f"{registry.rstrip('/')}/{short}"
    if tool.name == "docker":
        tool.run("tag", image, remote, what=f"tagging {remote}")
        tool.run("push", remote, what=f"pushing {remote}")
        return remote
    tls = ["--tls-verify=false"] if _is_local(registry) else []
    tool.run("push", *tls, image, f"docker://{remote}", what=f"pushing {remote}")
    return remote


def pull_image(remote: str, *, builder: str | None = None) -> str:
    tool = find_tool(builder).runner
    tls = ["--tls-verify=false"] if _is_local(remote) and tool.name != "docker" else []
    tool.run("pull", "-q", *tls, remote, what=f"pulling {remote}")
    return remote


# -- running -------------------------------------------------------------------------------


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class RunningContainer:
    """A container of a service image serving on 127.0.0.1:``port``; :meth:`stop` sends SIGTERM, then waits."""

    def __init__(self, tool: ContainerTool, name: str, port: int) -> None:
        self.tool = tool
        self.name = name
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    def logs(self) -> str:
        done = self.tool.run("logs", self.name, what="reading the container's log", check=False)
        return (done.stdout or "") + (done.stderr or "")

    def wait_until_up(self, timeout: float = 30.0) -> None:
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/ping", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            state = self.tool.run("inspect", "--format", "{{.State.Running}}", self.name, what="inspect", check=False)
            if state.returncode != 0 or state.stdout.strip() == "false":
                raise ImageError(f"container {self.name} stopped before serving: {_last_lines(self.logs(), 5)}")
            time.sleep(0.1)
        raise ImageError(f"container {self.name} did not answer {self.url}/ping within {timeout:g} s: {_last_lines(self.logs(), 5)}")

    def stop(self, grace: int = 10) -> None:
        self.tool.run("stop", "-t", str(grace), self.name, what=f"stopping {self.name}", check=False, timeout=grace + 30)
        self.tool.run("rm", "-f", self.name, what=f"removing {self.name}", check=False)

    def __enter__(self) -> RunningContainer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def run_args(image: str, port: int, environment: Mapping[str, str], name: str) -> list[str]:
    # Host networking bound to 127.0.0.1: nothing is exposed beyond this machine, and no bridge or NAT is needed.
    variables = [arg for key, value in sorted({**environment, "PORT": str(port)}.items()) for arg in ("-e", f"{key}={value}")]
    return ["run", "--name", name, "--network", "host", *variables, image, "--host", "127.0.0.1", SERVICE]


def run_image(
    image: str, port: int, environment: Mapping[str, str] | None = None, *, builder: str | None = None, wait: bool = True, timeout: float = 30.0
) -> RunningContainer:
    """Start ``image`` in the background serving on 127.0.0.1:``port`` and (with ``wait``) return once /ping answers.

    The signature matches macaron-aws's stand-in launcher: ``run_image(image, port, env)``."""
    tool = find_tool(builder).runner
    if not port_is_free(port):
        raise ImageError(f"port {port} is taken on 127.0.0.1: choose another with --port")
    name = f"macaron-{re.sub(r'[^a-zA-Z0-9_.-]', '-', image.rsplit('/', 1)[-1])}-{port}"
    tool.run("rm", "-f", name, what="removing an old container", check=False)
    args = run_args(image, port, environment or {}, name)
    tool.run(args[0], "-d", *args[1:], what=f"starting {image}")
    running = RunningContainer(tool, name, port)
    if wait:
        try:
            running.wait_until_up(timeout)
        except ImageError:
            running.stop(grace=1)
            raise
    return running


def run_foreground(image: str, port: int, environment: Mapping[str, str], *, builder: str | None = None) -> int:
    """``macaron image run``: serve in the foreground; Ctrl-C (or SIGTERM) stops the container gracefully."""
    tool = find_tool(builder).runner
    if not port_is_free(port):
        raise ImageError(f"port {port} is taken on 127.0.0.1: choose another with --port")
    name = f"macaron-run-{port}"
    tool.run("rm", "-f", name, what="removing an old container", check=False)
    args = run_args(image, port, environment, name)
    process = subprocess.Popen([tool.path, args[0], "--rm", *args[1:]])
    try:
        return process.wait()
    except KeyboardInterrupt:
        tool.run("stop", "-t", "10", name, what="stopping", check=False)
        return process.wait()


# -- a base image without a registry -------------------------------------------------------------


BASE_SUITE = "bookworm"
# Trimmed from the base: documentation, translations and package lists serve nothing at run time.
BASE_TRIM = ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale", "var/lib/apt/lists", "var/cache/apt", "var/log")


def _mirror() -> str:
    configured = os.environ.get("MACARON_DEBIAN_MIRROR")
    if configured:
        return configured
    for source in sorted(Path("/etc/apt").glob("sources.list*")) + sorted(Path("/etc/apt/sources.list.d").glob("*")):
        if not source.is_file():
            continue
        for match in re.finditer(r"(?:^deb|URIs:)\s+(?:\[[^]]*\]\s+)?(https?://\S+/debian)/?\s", source.read_text() + "\n", re.MULTILINE):
            return match.group(1)
    return "http://deb.debian.org/debian"


def base_image(*, builder: str | None = None, suite: str = BASE_SUITE, cache: Path | None = None, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Build (once) a slim Debian base with Python 3 from Debian's packages, with debootstrap; return its name.

    The root filesystem is kept in the cache as a tar file, so a new container storage imports it in seconds."""
    say = progress or (lambda _line: None)
    tool = find_tool(builder).runner
    name = f"localhost/macaron-base:{suite}-python3"
    if tool.exists(name):
        return {"image": name, "built": False, "imported": False}
    cache = cache or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "macaron" / "base"
    archive = cache / f"{suite}-python3.tar"
    started = time.monotonic()
    built = False
    if not archive.exists():
        if shutil.which("debootstrap") is None:
            raise ImageError("debootstrap is not installed: install it (Debian: apt-get install debootstrap), or pass a base image with --base")
        if os.geteuid() != 0:
            raise ImageError("building a base with debootstrap needs root; run 'macaron image base' as root once, or pass --base")
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="macaron-base-", dir=cache) as scratch:
            rootfs = Path(scratch) / "rootfs"
            mirror = _mirror()
            say(f"debootstrap {suite} from {mirror} (about a minute)")
            command = ["debootstrap", "--variant=minbase", "--include=python3,ca-certificates", suite, str(rootfs), mirror]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise ImageError(f"debootstrap {suite} failed: {_last_lines(done.stdout + done.stderr)}")
            for trimmed in BASE_TRIM:
                shutil.rmtree(rootfs / trimmed, ignore_errors=True)
                (rootfs / trimmed).mkdir(parents=True, exist_ok=True)
            partial = archive.with_suffix(".partial")
            subprocess.run(["tar", "-C", str(rootfs), "--sort=name", "--numeric-owner", "-cf", str(partial), "."], check=True)
            partial.rename(archive)
        built = True
    say(f"importing {archive} as {name}")
    tool.run(
        "import", "--change", "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "--change", 'CMD ["python3"]',
        str(archive), name, what=f"importing {archive}",
    )  # fmt: skip
    return {"image": name, "built": built, "imported": True, "archive": str(archive), "seconds": round(time.monotonic() - started, 2)}

