"""A service's configuration: ``macaron.yaml``, an overlay per environment, secrets from the environment.

Secrets are values that ``env_secrets`` brings in from environment variables.
They never appear in a Config's repr or str, nor in the log lines written here;
:meth:`Config.masked` and :meth:`Config.redact` let other code (crash reports,
debugging) show the configuration with them hidden.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import yaml
from flask import current_app, has_app_context

from macaron.service import service_of
from macaron.startup import StartupError

CONFIG_FILE = "macaron.yaml"
LEGACY_CONFIG_FILE = "pym-config.yaml"
MASK = "****"

# Keys whose string values are hidden by masked() even when they are written in the file itself.
SECRET_KEY_NAMES = re.compile(r"secret|password|passwd|private_key|api_?key|credential|(^|_)token$", re.IGNORECASE)
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

log = logging.getLogger("macaron.config")

T = TypeVar("T")


class ConfigError(StartupError):
    """The configuration cannot be used; the message says which file or variable."""


class Config(Mapping[str, Any]):
    """Read-only attribute access over a configuration mapping: ``config.jwt_secret``, ``config.db.host``.

    Nested mappings come back as Config too. Keys that clash with a method or
    attribute (``get``, ``items``, ``keys``, ``values``, ``section``, ``root``,
    ``env``, ``files``...) are read with ``config["get"]``.
    """

    def __init__(
        self,
        values: Mapping[str, Any],
        root: Path | None = None,
        env: str | None = None,
        *,
        files: Iterable[Path] = (),
        secrets: Iterable[str] = (),
    ) -> None:
        set_ = object.__setattr__
        set_(self, "_values", dict(values))
        set_(self, "root", root)
        set_(self, "env", env)
        set_(self, "files", tuple(files))
        # The values (not the names) of the secrets, so nested sections and copies can still hide them.
        set_(self, "_secrets", frozenset(s for s in secrets if s))
        set_(self, "_memo", {})

    _values: dict[str, Any]
    root: Path | None
    env: str | None
    files: tuple[Path, ...]
    _secrets: frozenset[str]
    _memo: dict[str, Any]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_values", "_secrets", "_memo"):
            raise AttributeError(name)
        try:
            value = self._values[name]
        except KeyError:
            raise AttributeError(f"no '{name}' in {self.where()}") from None
        return self._child(value) if isinstance(value, Mapping) else value

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("the configuration is read-only")

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *(k for k in self._values if isinstance(k, str) and k.isidentifier())})

    def __repr__(self) -> str:
        # Keys only: a repr ends up in tracebacks, debuggers and logs, where secret values must not.
        where = f" from {', '.join(f.name for f in self.files)}" if self.files else ""
        env = f" env={self.env!r}" if self.env else ""
        return f"<Config{where}{env} keys={sorted(map(str, self._values))}>"

    __str__ = __repr__

    def _child(self, value: Mapping[str, Any]) -> Config:
        return Config(value, self.root, self.env, files=self.files, secrets=self._secrets)

    def section(self, name: str) -> Config:
        """A nested section as a Config, empty when absent."""
        value = self._values.get(name) or {}
        if not isinstance(value, Mapping):
            raise ConfigError(f"{self.where()}: '{name}' must be a mapping")
        return self._child(value)

    def to_dict(self) -> dict[str, Any]:
        """The values, secrets included: do not log this; log :meth:`masked`."""
        return dict(self._values)

    def masked(self) -> dict[str, Any]:
        """The values with secrets, and strings under secret-looking keys, replaced by ``****``."""
        return self._mask(self._values, None)  # type: ignore[no-any-return]

    def _mask(self, value: Any, key: str | None) -> Any:
        if isinstance(value, Mapping):
            return {k: self._mask(v, str(k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self._mask(v, key) for v in value]
        if isinstance(value, str) and (value in self._secrets or (key is not None and SECRET_KEY_NAMES.search(key))):
            return MASK
        return value

    def redact(self, text: str) -> str:
        """``text`` with every secret value in it replaced by ``****`` (for log lines and reports)."""
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def is_secret(self, value: Any) -> bool:
        return isinstance(value, str) and value in self._secrets

    def memo(self, key: str, build: Callable[[Config], T]) -> T:
        """``build(self)``, computed once per Config: settings derived from the config at start-up."""
        try:
            return self._memo[key]  # type: ignore[no-any-return]
        except KeyError:
            value = self._memo[key] = build(self)
            return value

    def path(self, value: str) -> Path:
        """A file named in the config, relative to the service folder."""
        candidate = Path(value).expanduser()
        return candidate if candidate.is_absolute() or self.root is None else self.root / candidate

    def where(self) -> str:
        """The files this configuration came from, for error messages."""
        return " + ".join(str(f) for f in self.files) or "the configuration"


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        with path.open() as stream:
            data = yaml.safe_load(stream) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the file: {exc.strerror}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: must hold a mapping of keys to values")
    return data


def _merge(base: dict[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _substitute_secrets(values: Any, secrets: Mapping[str, str]) -> Any:
    if isinstance(values, dict):
        return {key: _substitute_secrets(value, secrets) for key, value in values.items()}
    if isinstance(values, list):
        return [_substitute_secrets(value, secrets) for value in values]
    if isinstance(values, str) and values in secrets:
        return secrets[values]
    return values


def _secret_names(values: Mapping[str, Any], file: Path) -> list[str]:
    names = values.get("env_secrets") or []
    if not isinstance(names, list) or not all(isinstance(name, str) and ENV_NAME.fullmatch(name) for name in names):
        raise ConfigError(f"{file}: 'env_secrets' must be a list of environment variable names")
    return names


def load_config(root: str | os.PathLike[str], env: str | None = None) -> Config:
    """Load the configuration of the service in folder ``root``.

    ``env`` (or ``MACARON_ENV``) selects the overlay ``macaron.<env>.yaml``, merged
    key by key over ``macaron.yaml``. Every name in ``env_secrets`` (of either
    file) must be set, and not empty, in the environment: a config value equal to
    the name is replaced by the variable's value. A PyMacaron ``pym-config.yaml``
    (and ``pym-config.<env>.yaml``, ``PYM_ENV``) is read when there is no
    ``macaron.yaml``.
    """
    root_path = Path(root).resolve()
    main = root_path / CONFIG_FILE
    if main.exists():
        prefix = "macaron"
        env = env if env is not None else os.environ.get("MACARON_ENV") or None
    elif (root_path / LEGACY_CONFIG_FILE).exists():
        main = root_path / LEGACY_CONFIG_FILE
        prefix = "pym-config"
        env = env if env is not None else os.environ.get("MACARON_ENV") or os.environ.get("PYM_ENV") or None
        log.info("%s: read as a PyMacaron config; rename it %s (and pym-config.<env>.yaml to macaron.<env>.yaml)", main, CONFIG_FILE)
    else:
        raise ConfigError(f"{main}: no such file (a service needs a {CONFIG_FILE} with at least 'name')")
    values = _read_yaml(main)
    files = [main]
    names = _secret_names(values, main)
    secrets_file = main
    if env:
        overlay_file = root_path / f"{prefix}.{env}.yaml"
        if overlay_file.exists():
            overlay = _read_yaml(overlay_file)
            extra = _secret_names(overlay, overlay_file)
            values = _merge(values, overlay)
            # Lists replace lists in an overlay, but env_secrets add up: an overlay that names one more
            # secret must not turn the base file's secrets back into their literal names.
            names = list(dict.fromkeys([*names, *extra]))
            values["env_secrets"] = names
            if extra:
                secrets_file = overlay_file
            files.append(overlay_file)
        else:
            log.info("environment %r: no %s, using %s alone", env, overlay_file.name, main.name)
    missing = [name for name in names if name not in os.environ]
    if missing:
        plural = len(missing) > 1
        raise ConfigError(
            f"{secrets_file}: environment variable{'s' if plural else ''} {', '.join(missing)} "
            f"listed in env_secrets {'are' if plural else 'is'} not set"
        )
    empty = [name for name in names if not os.environ[name]]
    if empty:
        plural = len(empty) > 1
        raise ConfigError(
            f"{secrets_file}: environment variable{'s' if plural else ''} {', '.join(empty)} "
            f"listed in env_secrets {'are' if plural else 'is'} empty"
        )
    secrets = {name: os.environ[name] for name in names}
    values = _substitute_secrets(values, secrets)
    if not values.get("name"):
        raise ConfigError(f"{main}: 'name' is required")
    config = Config(values, root_path, env, files=files, secrets=secrets.values())
    if log.isEnabledFor(logging.DEBUG):
        log.debug(
            "config from %s (env %s), secrets from %s: %s",
            " + ".join(f.name for f in files),
            env or "-",
            ", ".join(names) or "-",
            config.masked(),
        )
    return config


_current: Config | None = None


def import_callable(key: str, dotted: Any, where: str) -> Callable[..., Any]:
    """The function that the setting ``key`` names as ``package.module.function``; a ConfigError names what is wrong."""
    from macaron.importing import DottedPathError, import_object

    try:
        target: Callable[..., Any] = import_object(dotted, function=True)
    except DottedPathError as exc:
        raise ConfigError(f"{where}: {exc.describe(key)}") from exc
    return target


def import_callables(config: Config, key: str) -> list[tuple[str, Callable[..., Any]]]:
    """The functions that the setting ``key`` names: one dotted path or a list of them, each with its name."""
    names = config.get(key) or []
    if isinstance(names, str):
        names = [names]
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        raise ConfigError(f"{config.where()}: {key} must be a dotted path (package.module.function) or a list of them")
    return [(name, import_callable(key, name, config.where())) for name in names]


def set_config(config: Config | None) -> None:
    """Make ``config`` what :func:`get_config` returns outside a request (None: load it again on next use)."""
    global _current
    _current = config


@contextmanager
def using_config(config: Config) -> Iterator[Config]:
    """Make ``config`` what :func:`get_config` returns outside a request for the ``with`` block, then restore the previous one.

    For code that runs another service's logic in this process for a moment (a test
    token signed with that service's settings, a script): ``with using_config(load_config(path)):``.
    """
    global _current
    previous = _current
    _current = config
    try:
        yield config
    finally:
        _current = previous


def get_config() -> Config:
    """The configuration of the running service.

    In a request, the configuration of the app serving it. Outside one, that of
    the last app created in this process; with none, it loads the service in
    ``MACARON_SERVICE`` or the current folder (with ``MACARON_ENV``), so scripts
    and tests get the same values as the server.
    """
    global _current
    if has_app_context():
        try:
            return service_of(current_app).config
        except LookupError:  # a Flask app macaron did not make
            pass
    if _current is None:
        _current = load_config(os.environ.get("MACARON_SERVICE", "."))
    return _current
