"""JWT authentication: issue tokens, check them on requests, and know who is calling.

Configuration (``macaron.yaml``; docs/auth.md has the details):

``jwt_algorithm``     HS256 (default), HS384, HS512, RS256/384/512, PS256/384/512, ES256/384/512 or EdDSA.
``jwt_secret``        the HMAC secret (HS*); put it in ``env_secrets``.
``jwt_public_key``    PEM text, or a PEM file relative to the service folder (asymmetric algorithms).
``jwt_jwks_file``     a JWKS file instead of ``jwt_public_key``; the token's ``kid`` picks the key.
``jwt_private_key``   PEM text or file, to sign with ``generate_token`` under an asymmetric algorithm.
``jwt_key_id``        the ``kid`` header ``generate_token`` writes.
``jwt_audience``      checked against ``aud`` (and written by ``generate_token``).
``jwt_issuer``        checked against ``iss`` (and written by ``generate_token``).
``jwt_token_timeout`` lifetime of generated tokens in seconds, default 86400.
``jwt_leeway``        clock skew allowed on ``exp``, ``nbf`` and ``iat``, in seconds, default 10.
``jwt_cookie``        also read the token from a ``token`` cookie holding ``Bearer <jwt>``; default false.

Every check passes an explicit one-algorithm list to PyJWT, so ``alg: none`` and
algorithm-confusion tokens (an HS256 token "signed" with the RSA public key) fail
with ``TOKEN_INVALID``.

Scopes (OAuth2 style): an operation whose spec ``security`` lists scopes, or a
handler under ``requires_auth(scopes=[...])``, needs a token granting them, read
from its ``scope`` claim (else ``scp``; see :func:`token_scopes`). A valid token
that lacks one gets 403 ``INSUFFICIENT_SCOPE``.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, ClassVar, NamedTuple, TypeVar, cast, overload
from urllib.parse import unquote

import jwt
from flask import request
from jwt.algorithms import get_default_algorithms

from macaron import context
from macaron.config import Config, ConfigError, get_config, import_callable
from macaron.errors import MacaronException

log = logging.getLogger("macaron.auth")

F = TypeVar("F", bound=Callable[..., Any])

# The identity of the caller, for handlers: re-exported from macaron.context.
get_userid = context.get_userid
get_token = context.get_token
get_token_claims = context.get_claims

_now = time.time  # the clock of the verified-token cache (PyJWT keeps its own)

DEFAULT_TIMEOUT = 86400
DEFAULT_LEEWAY = 10
HMAC_ALGORITHMS = {"HS256": 32, "HS384": 48, "HS512": 64}  # with the key length (bytes) each hash calls for
KEY_TYPES = {
    **{f"RS{n}": "RSA" for n in (256, 384, 512)},
    **{f"PS{n}": "RSA" for n in (256, 384, 512)},
    **{f"ES{n}": "EC" for n in (256, 384, 512)},
    "EdDSA": "OKP",
}
KEY_NAMES = {"RSA": "an RSA", "EC": "an EC", "OKP": "an Ed25519"}
REGISTERED_CLAIMS = ("iss", "sub", "aud", "iat", "nbf", "exp", "jti")
COOKIE = "token"
VERIFIED_CACHE_SIZE = 4096
ENV_VARIABLE_LIKE = re.compile(r"[A-Z][A-Z0-9]*(_[A-Z0-9]+)+")
# Where a token keeps its scopes, the first present wins: ``scope`` is the registered claim (RFC 8693 §4.2,
# RFC 9068), ``scp`` what Azure AD and Okta write.
SCOPE_CLAIMS = ("scope", "scp")
# RFC 6749 §3.3 scope-token: printable ASCII but space, quote and backslash, so a name always fits a WWW-Authenticate header.
SCOPE_NAME = re.compile(r"[\x21\x23-\x5B\x5D-\x7E]+")


# -- errors -----------------------------------------------------------------------------


class AuthError(MacaronException):
    """The request is not authenticated: every subclass answers 401 with a ``WWW-Authenticate`` header."""

    status = 401
    challenge: ClassVar[str] = 'Bearer error="invalid_token"'

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": self.challenge}


class AuthorizationHeaderMissing(AuthError):
    code = "AUTHORIZATION_HEADER_MISSING"
    challenge = "Bearer"  # RFC 6750: no error code when the request carried no credentials


class TokenInvalid(AuthError):
    code = "TOKEN_INVALID"


class TokenExpired(AuthError):
    code = "TOKEN_EXPIRED"
    challenge = 'Bearer error="invalid_token", error_description="The token expired"'


class TokenNotYetValid(AuthError):
    code = "TOKEN_NOT_YET_VALID"


class TokenWrongAudience(AuthError):
    code = "TOKEN_WRONG_AUDIENCE"


class TokenWrongIssuer(AuthError):
    code = "TOKEN_WRONG_ISSUER"


class TokenRevoked(AuthError):
    code = "TOKEN_REVOKED"
    challenge = 'Bearer error="invalid_token", error_description="The token was revoked"'


class InsufficientScope(MacaronException):
    """The token is valid but does not grant a scope the operation needs: 403, not 401 (RFC 6750 §3.1).

    ``scopes`` go to the ``WWW-Authenticate`` challenge's ``scope`` attribute: the
    scopes a token needs here, for the client to ask its authorization server for.
    """

    code = "INSUFFICIENT_SCOPE"
    status = 403

    def __init__(self, description: str = "", *, scopes: Iterable[str] = (), user_message: str | None = None, **extra: Any) -> None:
        super().__init__(description, user_message=user_message, **extra)
        self.scopes = scope_names(scopes, "InsufficientScope scopes")

    @property
    def headers(self) -> dict[str, str]:
        challenge = 'Bearer error="insufficient_scope"'
        if self.scopes:
            challenge += f', scope="{" ".join(self.scopes)}"'
        return {"WWW-Authenticate": challenge}


# -- settings, computed once per configuration ------------------------------------------


@dataclass(frozen=True)
class AuthSettings:
    algorithm: str
    verify_key: Any  # secret or public key object; None with a JWKS
    jwks: dict[str | None, jwt.PyJWK] | None  # key id -> key
    signing_key: Any  # None when the service can check tokens but not issue them
    key_id: str | None
    audience: str | None
    issuer: str | None
    leeway: float
    timeout: int
    cookie: bool
    algorithms: list[str]  # always exactly the configured one: never what the token's header asks for
    options: dict[str, Any]
    decoder: jwt.PyJWT
    verified: dict[str, Verified]  # tokens that passed every check but revocation, which can come at any time
    revoked: Callable[[Mapping[str, Any]], Any] | None  # jwt_revoked: asked on every request that carries a token


class Verified(NamedTuple):
    """A token that passed every check, with what the per-request path needs worked out once."""

    exp: int
    claims: dict[str, Any]  # never handed out as is: callers get a copy
    scopes: frozenset[str]


def is_configured(config: Config) -> bool:
    """Whether the config sets up JWT at all (a secret, a public key or a JWKS file)."""
    return any(config.get(key) for key in ("jwt_secret", "jwt_public_key", "jwt_jwks_file"))


def settings(config: Config | None = None) -> AuthSettings:
    """The JWT settings of ``config`` (default: the running service's), checked and built once."""
    return (config or get_config()).memo("macaron.auth", _build_settings)


def _build_settings(config: Config) -> AuthSettings:
    where = config.where()

    def fail(message: str) -> ConfigError:
        return ConfigError(f"{where}: {message}")

    algorithm = str(config.get("jwt_algorithm") or "HS256")
    if algorithm.lower() == "none":
        raise fail("jwt_algorithm 'none' would accept unsigned tokens; use HS256, RS256 or ES256")
    if algorithm not in HMAC_ALGORITHMS and algorithm not in KEY_TYPES:
        raise fail(f"jwt_algorithm '{algorithm}' is not supported (use one of {', '.join([*HMAC_ALGORITHMS, *KEY_TYPES])})")
    secret = config.get("jwt_secret")
    public_key = config.get("jwt_public_key")
    jwks_file = config.get("jwt_jwks_file")
    private_key = config.get("jwt_private_key")
    key_id = config.get("jwt_key_id")
    verify_key: Any = None
    signing_key: Any = None
    jwks: dict[str | None, jwt.PyJWK] | None = None
    algo = get_default_algorithms()[algorithm]

    if algorithm in HMAC_ALGORITHMS:
        if public_key or jwks_file or private_key:
            raise fail(
                f"jwt_algorithm is {algorithm} (a shared secret) but a public or private key is configured: set jwt_algorithm to RS256, ES256..."
            )
        if not secret or not isinstance(secret, str):
            raise fail(f"jwt_secret is required with jwt_algorithm {algorithm} (list its variable in env_secrets)")
        if not config.is_secret(secret) and ENV_VARIABLE_LIKE.fullmatch(secret):
            raise fail(f"jwt_secret is '{secret}', the name of an environment variable: list {secret} in env_secrets")
        if len(secret.encode()) < HMAC_ALGORITHMS[algorithm]:
            log.warning("%s: jwt_secret is shorter than %d bytes, too short for %s", where, HMAC_ALGORITHMS[algorithm], algorithm)
        verify_key = signing_key = secret.encode()
    else:
        if secret:
            raise fail(f"jwt_secret is set but jwt_algorithm is {algorithm}: remove jwt_secret (or use HS256)")
        if bool(public_key) == bool(jwks_file):
            raise fail(f"jwt_algorithm {algorithm} needs exactly one of jwt_public_key and jwt_jwks_file")
        if public_key:
            verify_key = _load_key(config, "jwt_public_key", str(public_key), algorithm, algo, private=False)
        else:
            jwks = _load_jwks(config, str(jwks_file), algorithm)
        if private_key:
            signing_key = _load_key(config, "jwt_private_key", str(private_key), algorithm, algo, private=True)

    audience = config.get("jwt_audience")
    issuer = config.get("jwt_issuer")
    for key, value in (("jwt_audience", audience), ("jwt_issuer", issuer), ("jwt_key_id", key_id)):
        if value is not None and not isinstance(value, str):
            raise fail(f"{key} must be a string")
    timeout = config.get("jwt_token_timeout", DEFAULT_TIMEOUT)
    if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout <= 0:
        raise fail("jwt_token_timeout must be a positive number of seconds")
    leeway = config.get("jwt_leeway", DEFAULT_LEEWAY)
    if not isinstance(leeway, (int, float)) or isinstance(leeway, bool) or leeway < 0:
        raise fail("jwt_leeway must be a number of seconds, 0 or more")
    cookie = config.get("jwt_cookie", False)
    if not isinstance(cookie, bool):
        raise fail("jwt_cookie must be true or false")
    revoked = import_callable("jwt_revoked", config["jwt_revoked"], where) if config.get("jwt_revoked") else None
    required = ("exp", "sub", *(("aud",) if audience else ()), *(("iss",) if issuer else ()))
    return AuthSettings(
        algorithm=algorithm,
        verify_key=verify_key,
        jwks=jwks,
        signing_key=signing_key,
        key_id=key_id,
        audience=audience,
        issuer=issuer,
        leeway=float(leeway),
        timeout=timeout,
        cookie=cookie,
        algorithms=[algorithm],
        options={"require": list(required)},
        decoder=jwt.PyJWT(),
        verified={},
        revoked=revoked,
    )


def _read_pem(config: Config, key: str, value: str) -> bytes:
    if value.lstrip().startswith("-----BEGIN"):
        return value.encode()
    path = config.path(value)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{config.where()}: {key}: cannot read {path}: {exc.strerror}") from exc


def _load_key(config: Config, key: str, value: str, algorithm: str, algo: Any, private: bool) -> Any:
    """The key object, loaded once here rather than parsed from PEM on every request."""
    pem = _read_pem(config, key, value)
    source = "the PEM text" if value.lstrip().startswith("-----BEGIN") else str(config.path(value))
    if b"-----BEGIN CERTIFICATE-----" in pem and not private:
        from cryptography import x509

        try:
            return algo.prepare_key(x509.load_pem_x509_certificate(pem).public_key())
        except Exception as exc:
            raise ConfigError(
                f"{config.where()}: {key}: {source} is not a certificate for {KEY_NAMES[KEY_TYPES[algorithm]]} key usable with {algorithm}"
            ) from exc
    try:
        prepared = algo.prepare_key(pem)
    except Exception as exc:
        raise ConfigError(
            f"{config.where()}: {key}: {source} is not {KEY_NAMES[KEY_TYPES[algorithm]]} key usable with {algorithm}"
        ) from exc
    is_private = hasattr(prepared, "public_key")
    if is_private != private:
        wanted = "a private" if private else "a public"
        raise ConfigError(f"{config.where()}: {key}: {source} must hold {wanted} key")
    return prepared


def _load_jwks(config: Config, value: str, algorithm: str) -> dict[str | None, jwt.PyJWK]:
    path = config.path(value)
    where = f"{config.where()}: jwt_jwks_file {path}"
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read it: {exc.strerror}") from exc
    except ValueError as exc:
        raise ConfigError(f"{where}: not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise ConfigError(f"{where}: a JWKS is a JSON object with a 'keys' list")
    keys: dict[str | None, jwt.PyJWK] = {}
    for index, entry in enumerate(data["keys"]):
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: keys[{index}] is not an object")
        # Keys for encryption, for another algorithm or of another type are not ours to check tokens with.
        if entry.get("use", "sig") != "sig" or entry.get("alg", algorithm) != algorithm or entry.get("kty") != KEY_TYPES[algorithm]:
            continue
        if "d" in entry:
            raise ConfigError(f"{where}: keys[{index}] is a private key; publish only public keys in a JWKS")
        try:
            jwk = jwt.PyJWK(entry, algorithm=algorithm)
        except jwt.PyJWKError as exc:
            raise ConfigError(f"{where}: keys[{index}]: {exc}") from exc
        kid = entry.get("kid")
        if kid in keys:
            raise ConfigError(f"{where}: two keys have the key id {kid!r}")
        keys[kid] = jwk
    if not keys:
        raise ConfigError(f"{where}: no {KEY_TYPES[algorithm]} signing key for {algorithm} in it")
    return keys


# -- issuing ----------------------------------------------------------------------------


def generate_token(
    user_id: str | int,
    expire_in: int | None = None,
    data: dict[str, Any] | None = None,
    *,
    scopes: Iterable[str] | None = None,
) -> str:
    """A signed JWT for ``user_id`` (its ``sub``), valid ``expire_in`` seconds (default ``jwt_token_timeout``).

    ``data`` adds claims; it is not modified, and may not set the registered
    claims this function sets (iss, sub, aud, iat, nbf, exp, and ``jti``: a
    fresh random id, which a ``jwt_revoked`` check can use to revoke one token).
    ``scopes`` (a list of scope names) are written as the ``scope`` claim, space-separated;
    ``data`` may then not hold ``scope`` or ``scp`` too.
    """
    if user_id is None or user_id == "":
        raise ValueError("generate_token needs a user id")
    config = get_config()
    current = settings(config)
    if current.signing_key is None:
        raise ConfigError(f"{config.where()}: generate_token needs jwt_private_key to sign {current.algorithm} tokens")
    extra = dict(data or {})
    clash = sorted(set(extra) & set(REGISTERED_CLAIMS))
    if clash:
        raise ValueError(f"generate_token sets {', '.join(clash)} itself; remove {'them' if len(clash) > 1 else 'it'} from data")
    if scopes is not None:
        names = scope_names(scopes, "generate_token scopes")
        both = [claim for claim in SCOPE_CLAIMS if claim in extra]
        if both:
            raise ValueError(f"generate_token got scopes and a '{both[0]}' claim in data; give the scopes one way")
        if names:
            extra["scope"] = " ".join(names)
    now = int(time.time())
    claims: dict[str, Any] = {
        **extra,
        "sub": str(user_id),
        "iat": now,
        "nbf": now,
        "exp": now + (current.timeout if expire_in is None else int(expire_in)),
        "jti": uuid.uuid4().hex,
    }
    if current.issuer:
        claims["iss"] = current.issuer
    if current.audience:
        claims["aud"] = current.audience
    headers = {"kid": current.key_id} if current.key_id else None
    return jwt.encode(claims, current.signing_key, algorithm=current.algorithm, headers=headers)


# -- scopes -----------------------------------------------------------------------------


def scope_names(scopes: Iterable[str], what: str) -> list[str]:
    """``scopes`` as a list without repeats, each checked to be a scope name (ValueError, TypeError)."""
    if isinstance(scopes, str):
        # A string is iterable too: "admin" would silently become the scopes a, d, m, i, n.
        raise TypeError(f"{what} must be a list of scope names, not the string {scopes!r}")
    names: list[str] = []
    for name in scopes:
        if not isinstance(name, str) or not SCOPE_NAME.fullmatch(name):
            raise ValueError(f"{what}: {name!r} is not a scope name (printable ASCII, no space, '\"' or '\\', RFC 6749 §3.3)")
        if name not in names:
            names.append(name)
    return names


def token_scopes(claims: Mapping[str, Any]) -> frozenset[str]:
    """The scopes a token's claims grant.

    Read from ``scope`` (RFC 8693, RFC 9068: a space-separated string) or, when the
    token has no ``scope`` claim, from ``scp`` (a list of strings, or a
    space-separated string). ``scope`` wins when both are present: it is the
    registered claim, and merging the two could grant what neither meant. Either may
    be a string or a list of strings; a claim of any other shape grants no scope.
    """
    for claim in SCOPE_CLAIMS:
        if claim in claims:
            value = claims[claim]
            if isinstance(value, str):
                return frozenset(value.split())
            return frozenset(value) if _is_scope_claim(value) else frozenset()
    return frozenset()


def _is_scope_claim(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, list) and all(isinstance(item, str) for item in value))


def get_scopes() -> frozenset[str]:
    """The scopes of the caller's token (see :func:`token_scopes`); empty when anonymous."""
    return token_scopes(context.get_claims())


def _insufficient(alternatives: tuple[frozenset[str], ...], verified: Verified) -> InsufficientScope:
    missing = [sorted(needed - verified.scopes) for needed in alternatives]
    # The challenge names one set of scopes: those of the alternative the token comes closest to (first on a tie).
    closest = min(range(len(alternatives)), key=lambda index: len(missing[index]))
    granted = ", ".join(sorted(verified.scopes)) or "none"
    note = ""
    claim = next((name for name in SCOPE_CLAIMS if name in verified.claims), None)
    if claim is not None and not _is_scope_claim(verified.claims[claim]):
        note = f" (its '{claim}' claim is neither a space-separated string nor a list of strings)"
    if len(alternatives) == 1:
        needs = missing[0]
        description = f"the token lacks scope{'s' if len(needs) > 1 else ''} {_quoted(needs)}, which this operation requires"
    else:
        description = "the token lacks the scopes of every alternative this operation accepts: " + ", or ".join(_quoted(needs) for needs in missing)
    return InsufficientScope(f"{description}; the token's scopes: {granted}{note}", scopes=sorted(alternatives[closest]))


def _quoted(names: list[str]) -> str:
    return " and ".join(f"'{name}'" for name in names)


# -- checking ---------------------------------------------------------------------------


def verify_token(token: str, config: Config | None = None) -> dict[str, Any]:
    """The claims of ``token`` once its signature, dates, audience and issuer are checked.

    Raises an :class:`AuthError` subclass (401) saying what is wrong.
    """
    return _verify(token, settings(config))


def _verify(token: str, current: AuthSettings) -> dict[str, Any]:
    return dict(_verified(token, current).claims)


def _verified(token: str, current: AuthSettings) -> Verified:
    verified = _checked(token, current)
    if current.revoked is not None and current.revoked(MappingProxyType(verified.claims)):
        raise TokenRevoked("the token was revoked")
    return verified


def _checked(token: str, current: AuthSettings) -> Verified:
    # A token already verified (same bytes, so same signature) needs only its expiry checked again:
    # PyJWT's decoding and signature check cost far more than the rest of a request.
    known = current.verified.get(token)
    if known is not None:
        if _now() > known.exp + current.leeway:
            current.verified.pop(token, None)
            raise TokenExpired("the token expired")
        return known
    key: Any = current.verify_key
    if current.jwks is not None:
        try:
            kid = jwt.get_unverified_header(token).get("kid")
        except jwt.PyJWTError as exc:
            raise TokenInvalid(f"the token cannot be decoded: {exc}") from None
        key = current.jwks.get(kid)
        if key is None:
            if kid is None and len(current.jwks) == 1:
                key = next(iter(current.jwks.values()))
            else:
                raise TokenInvalid(f"no key with id {kid!r} in jwt_jwks_file" if kid else "the token names no key id (kid)")
    try:
        claims: dict[str, Any] = current.decoder.decode(
            token,
            key,
            algorithms=current.algorithms,
            audience=current.audience,
            issuer=current.issuer,
            leeway=current.leeway,
            options=current.options,  # type: ignore[arg-type]
        )
    except jwt.ExpiredSignatureError:
        raise TokenExpired("the token expired") from None
    except jwt.ImmatureSignatureError as exc:
        raise TokenNotYetValid(f"the token is not valid yet ({_claim_of(exc)} is in the future)") from None
    except jwt.MissingRequiredClaimError as exc:
        if exc.claim == "aud":
            raise TokenWrongAudience(f"the token has no audience; this service expects {current.audience!r}") from None
        if exc.claim == "iss":
            raise TokenWrongIssuer(f"the token has no issuer; this service expects {current.issuer!r}") from None
        raise TokenInvalid(f"the token has no '{exc.claim}' claim") from None
    except jwt.InvalidAudienceError:
        expected = f"this service expects {current.audience!r}" if current.audience else "this service sets no jwt_audience"
        raise TokenWrongAudience(f"the token is for another audience; {expected}") from None
    except jwt.InvalidIssuerError:
        raise TokenWrongIssuer(f"the token comes from another issuer; this service expects {current.issuer!r}") from None
    except jwt.InvalidAlgorithmError:
        raise TokenInvalid(f"the token is not signed with {current.algorithm}") from None
    except jwt.InvalidSignatureError:
        raise TokenInvalid("the token's signature does not match") from None
    except jwt.PyJWTError as exc:
        raise TokenInvalid(f"the token cannot be decoded: {exc}") from None
    if len(current.verified) >= VERIFIED_CACHE_SIZE:
        current.verified.clear()  # a crude bound: at worst, tokens are verified again
    verified = Verified(int(claims["exp"]), claims, token_scopes(claims))
    current.verified[token] = verified
    return verified


def _claim_of(exc: Exception) -> str:
    text = str(exc)
    return "iat" if "(iat)" in text else "nbf"


def _bearer(raw: str, source: str) -> str:
    parts = raw.split()
    if len(parts) != 2 or parts[0].lower() != "bearer":
        raise TokenInvalid(f"the {source} must be 'Bearer <token>'")
    return parts[1]


def token_cookie() -> str | None:
    """The ``token`` cookie's value as sent (not yet URL-decoded), or None.

    Werkzeug's parser drops a cookie whose value holds a raw space, which is how
    browsers (``document.cookie = "token=Bearer " + jwt``) and ``requests`` send
    ``Bearer <jwt>``: when the parsed cookies lack it, it is read from the
    ``Cookie`` header itself. Surrounding double quotes are removed.
    """
    parsed: str | None = request.cookies.get(COOKIE)
    if parsed is not None:
        return parsed
    header: str | None = request.environ.get("HTTP_COOKIE")
    if not header or COOKIE not in header:
        return None
    for pair in header.split(";"):
        name, equals, value = pair.partition("=")
        if equals and name.strip() == COOKIE:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            return value
    return None


def token_from_request(current: AuthSettings) -> str | None:
    """The raw JWT the request carries, or None."""
    header = request.headers.get("Authorization")
    if header is not None:
        return _bearer(header, "Authorization header")
    if current.cookie:
        cookie = token_cookie()
        if cookie is not None:
            return _bearer(unquote(cookie), f"'{COOKIE}' cookie")
    return None


def _missing(current: AuthSettings) -> AuthorizationHeaderMissing:
    if current.cookie:
        return AuthorizationHeaderMissing(f"no Authorization header and no '{COOKIE}' cookie")
    if token_cookie() is not None:
        return AuthorizationHeaderMissing(f"no Authorization header (a '{COOKIE}' cookie was sent, but jwt_cookie is off)")
    return AuthorizationHeaderMissing("no Authorization header")


def _call_as(handler: Callable[..., Any], args: Any, kwargs: Any, user_id: Any, token: str | None, claims: dict[str, Any]) -> Any:
    if context.current().request_id is not None:
        # The request's own context (begun and ended around each request by the request-id
        # middleware): the identity stays for the rest of the request, e.g. its log line.
        context.update(user_id=user_id, token=token, claims=claims)
        return handler(*args, **kwargs)
    # No per-request context: scope the identity to the handler, so it cannot stay on this
    # thread and reach the next request.
    with context.use(user_id=user_id, token=token, claims=claims):
        return handler(*args, **kwargs)


def _guard(handler: F, required: bool, scopes: tuple[frozenset[str], ...] = ()) -> F:
    @functools.wraps(handler)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        current = settings()
        token = token_from_request(current)
        if token is None:
            if required:
                raise _missing(current)
            return _call_as(handler, args, kwargs, None, None, {})
        verified = _verified(token, current)
        if scopes and not any(needed <= verified.scopes for needed in scopes):
            raise _insufficient(scopes, verified)
        return _call_as(handler, args, kwargs, verified.claims["sub"], token, dict(verified.claims))

    guarded.macaron_auth = "required" if required else "optional"  # type: ignore[attr-defined]
    return cast(F, guarded)


def security_guard(*, required: bool = True, scopes: Iterable[Iterable[str]] = ()) -> Callable[[F], F]:
    """The decorator that enforces an operation's spec ``security`` (built-in plugin ``auth``).

    ``scopes`` are alternatives, each a set of scopes that are all needed: a token
    granting any one set passes (403 ``INSUFFICIENT_SCOPE`` otherwise). No
    alternatives, or an empty one, means no scope is needed. With ``required``
    false a request without a token is served anonymously; a token it sends is
    still checked, scopes included.
    """
    alternatives = tuple(frozenset(scope_names(names, "security_guard scopes")) for names in scopes)
    if frozenset() in alternatives:
        alternatives = ()  # an alternative that needs no scope: any valid token will do
    return lambda handler: _guard(handler, required, alternatives)


@overload
def requires_auth(handler: F, *, scopes: Iterable[str] | None = None) -> F: ...


@overload
def requires_auth(handler: None = None, *, scopes: Iterable[str] | None = None) -> Callable[[F], F]: ...


def requires_auth(handler: F | None = None, *, scopes: Iterable[str] | None = None) -> F | Callable[[F], F]:
    """Serve the handler only to requests with a valid JWT (401 otherwise); usable as ``x-decorate-server``.

    ``@requires_auth(scopes=["pets:write"])`` also needs the token to grant every
    one of these scopes (403 ``INSUFFICIENT_SCOPE`` otherwise).
    """
    decorator: Callable[[F], F] = security_guard(required=True, scopes=[scopes] if scopes is not None else ())
    return decorator if handler is None else decorator(handler)


def optional_auth(handler: F) -> F:
    """Serve everybody; a request with a token gets it checked (401 if bad) and ``get_userid()`` set."""
    return _guard(handler, required=False)


__all__ = [
    "AuthError",
    "AuthorizationHeaderMissing",
    "InsufficientScope",
    "TokenExpired",
    "TokenInvalid",
    "TokenNotYetValid",
    "TokenWrongAudience",
    "TokenWrongIssuer",
    "generate_token",
    "get_scopes",
    "get_token",
    "get_token_claims",
    "get_userid",
    "optional_auth",
    "requires_auth",
    "security_guard",
    "token_scopes",
    "verify_token",
]
