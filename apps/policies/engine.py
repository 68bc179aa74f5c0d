"""The policy engine: one interface, ``evaluate(policy, rule, input) -> Decision``.

Two backends answer it with the same results:

* ``EmbeddedBackend`` (the default) evaluates in-process with regorus. Whether a source
  compiles is checked once per process (``CompileVerdicts``); engines are cached per source
  and per thread (a regorus engine may only be used on the thread that created it), so a
  cached evaluation costs a few microseconds.
* ``OpaServerBackend`` (when ``FLOWGATE["OPA_URL"]`` is set) pushes each version to an OPA
  server with the Policy API and evaluates with the Data API (see ``opa.py``).

Everything fails closed: a compile error, an evaluation error, a timeout, an input that is
too large or an undefined result is a ``Decision(allow=False, error=...)``, never an exception.

Bounds: policy source size (``POLICY_MAX_SOURCE_BYTES``), input size
(``POLICY_MAX_INPUT_BYTES``) and evaluation time (``POLICY_TIMEOUT_MS``). regorus 0.13's Python
binding holds the GIL while it evaluates and has no execution-time limit, so an in-process
evaluation cannot be interrupted; it is bounded after the fact (a result that arrives past
the deadline is discarded and denied). Code that is still being written (drafts, test runs,
the playground) is therefore evaluated by ``sandbox.py`` in a child process that is killed at
the deadline; only versions whose tests passed there are published. What no test can rule
out and would kill the process (a segfault) is refused for every version before it is
loaded: recursion (``recursion.py``), and inputs nested deeper than 255 levels.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

import orjson
from django.conf import settings

from .decision import Decision
from .recursion import recursion_cycle

RULE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
PACKAGE_LINE = re.compile(r"^\s*package\s+([A-Za-z_][A-Za-z0-9_.]*)", re.MULTILINE)
LOCATION = re.compile(r"-->\s*[^\n]*?:(\d+):(\d+)")
ERROR_LINE = re.compile(r"^error:\s*(.+)$", re.MULTILINE)
ENGINE_CACHE_SIZE = 512
NO_SUCH_RULE = "not a valid rule path"
UNSUPPORTED_BY_COMPILER = "not yet supported in the RVM compiler"


class PolicyError(Exception):
    """A policy could not be compiled or evaluated; ``str()`` is safe to show a user."""


@dataclass(frozen=True)
class PolicySource:
    """What the engine evaluates: a policy's Rego source at one version.

    ``version`` is the sha256 of ``source`` (``source_digest``): the same text is the same
    version everywhere, which is what lets compiled engines be cached by it."""

    slug: str
    package: str
    source: str
    version: str

    @classmethod
    def from_text(cls, *, slug: str, source: str) -> PolicySource:
        return cls(
            slug=slug, package=package_of(source), source=source, version=source_digest(source)
        )


@dataclass(frozen=True)
class CompileError:
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.line}:{self.column}: {self.message}" if self.line else self.message


def limits() -> dict[str, int]:
    flowgate = settings.FLOWGATE
    return {
        "max_source_bytes": int(flowgate.get("POLICY_MAX_SOURCE_BYTES", 64 * 1024)),
        "max_input_bytes": int(flowgate.get("POLICY_MAX_INPUT_BYTES", 256 * 1024)),
        "timeout_ms": int(flowgate.get("POLICY_TIMEOUT_MS", 1000)),
    }


def source_digest(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()


def package_of(source: str) -> str:
    match = PACKAGE_LINE.search(source)
    return match.group(1) if match else ""


def canonical_json(value: Any) -> str:
    """The one JSON spelling of an input: what is size-checked, digested and logged."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def input_size(input: Any) -> int | None:
    """Bytes of ``input`` as compact UTF-8 JSON (None when it cannot be written as JSON).
    On every evaluation's path: orjson takes a few microseconds where json takes tens for a
    flow definition; json still measures what orjson refuses (integers over 64 bits)."""
    try:
        return len(orjson.dumps(input, default=str, option=orjson.OPT_NON_STR_KEYS))
    except orjson.JSONEncodeError as error:
        if "Recursion" in str(error):
            return None  # deeper than regorus can walk safely, and a cycle
        try:
            text = json.dumps(input, separators=(",", ":"), ensure_ascii=False, default=str)
        except ValueError:  # a circular reference
            return None
        return len(text.encode())


def parse_regorus_error(message: str) -> CompileError:
    """regorus reports ``--> file:line:col`` and ``error: text``; keep what a person needs."""
    message = message.split("Stack backtrace:")[0].strip()
    location = LOCATION.search(message)
    text = ERROR_LINE.search(message)
    readable = text.group(1).strip() if text else (message.splitlines() or ["invalid policy"])[0]
    if location:
        return CompileError(int(location.group(1)), int(location.group(2)), readable)
    return CompileError(0, 0, readable)


def rule_names(engine: Any) -> list[str]:
    """Names of the non-function rules of the (single) policy loaded in ``engine``."""
    names: list[str] = []
    for module in json.loads(engine.get_ast_as_json()):
        for rule in module.get("ast", {}).get("rules", []):
            kind, body = next(iter(rule.items()))
            head = body.get("head", {}) if kind == "Spec" else body
            name = _head_name(head)
            if name and name not in names:
                names.append(name)
    return names


def _head_name(head: dict[str, Any]) -> str:
    if "Func" in head:
        return ""
    for value in head.values():
        reference = value.get("refr", {}) if isinstance(value, dict) else {}
        while "RefDot" in reference or "RefBrack" in reference:
            reference = next(iter(reference.values())).get("refr", {})
        if "Var" in reference:
            return str(reference["Var"]["value"])
    return ""


def new_regorus_engine(source: str, *, max_source_bytes: int) -> Any:
    import regorus

    engine = regorus.Engine()
    engine.set_policy_length_config(
        max_col=2_000, max_file_bytes=max_source_bytes, max_lines=max(1, max_source_bytes // 8)
    )
    engine.add_policy("policy.rego", source)
    return engine


def compile_check(source: str) -> list[CompileError]:
    """Parse and statically compile ``source`` (no evaluation: bounded by its size).
    Returns the errors with line and column; an empty list means it compiles."""
    import regorus

    bound = limits()["max_source_bytes"]
    if len(source.encode()) > bound:
        return [CompileError(0, 0, f"the policy is larger than the {bound // 1024} KiB limit")]
    package = package_of(source)
    if not package:
        return [CompileError(1, 1, "the policy must start with a package declaration")]
    try:
        engine = new_regorus_engine(source, max_source_bytes=bound)
        if cycle := recursion_cycle(engine.get_ast_as_json(), package):
            names, line, column = cycle
            message = f"{' → '.join(names)}: rules and functions may not call themselves"
            return [CompileError(line, column, f"recursion is not allowed: {message}")]
        entry_points = [f"data.{package}.{name}" for name in rule_names(engine)]
        if entry_points:
            regorus.Program.compile_from_modules("{}", [("policy.rego", source)], entry_points)
    except (RuntimeError, ValueError) as error:
        if UNSUPPORTED_BY_COMPILER in str(error):
            # The static compiler lags the interpreter (e.g. ``walk``); the policy's tests,
            # which must pass before publishing, exercise it instead.
            return []
        return [parse_regorus_error(str(error))]
    return []


def plain(value: Any) -> Any:
    """regorus returns sets for partial set rules; JSON (and OPA) has arrays."""
    if isinstance(value, str | bool | int | float) or value is None:
        return value
    if isinstance(value, set | frozenset):
        return sorted((plain(item) for item in value), key=canonical_json)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def decision_from_value(
    value: Any, *, policy: PolicySource, rule: str, duration_ms: float
) -> Decision:
    """Turn a rule's value into a Decision. A boolean is the verdict; an object gives
    ``allow``/``reasons`` (a ``route`` string without ``allow`` allows); a string is a route
    and allows. Anything else, or no value, denies."""
    identity: dict[str, Any] = {
        "policy": policy.slug,
        "version": policy.version,
        "duration_ms": duration_ms,
    }
    if value is None:
        message = f"rule {rule!r} is undefined for this input (deny by default)"
        return Decision(allow=False, reasons=[message], error=message, **identity)
    if isinstance(value, bool):
        return Decision(allow=value, result=value, reasons=[], **identity)
    if isinstance(value, str):
        return Decision(allow=True, result=value, reasons=[], **identity)
    if isinstance(value, dict):
        # An explicit ``allow`` decides; a route object without one allows (like a route string).
        route_only = "allow" not in value and isinstance(value.get("route"), str)
        allow = route_only or value.get("allow") is True
        reasons = value.get("reasons") or []
        reasons = [str(reason) for reason in (reasons if isinstance(reasons, list) else [reasons])]
        return Decision(allow=allow, result=value, reasons=reasons, **identity)
    message = (
        f"rule {rule!r} returned {type(value).__name__}; return a boolean, an object with "
        "'allow' or 'route', or a route name"
    )
    return Decision(allow=False, result=value, reasons=[message], error=message, **identity)


class Backend(Protocol):
    name: str

    def publish(self, policy: PolicySource) -> None:
        """Make ``policy`` evaluable (push it to a server, warm a cache). Raises PolicyError."""

    def value(self, policy: PolicySource, rule: str, input: dict[str, Any]) -> Any:
        """The rule's value (None when undefined). Raises PolicyError."""


class CompileVerdicts:
    """Which sources compile, once per process: a lock-protected LRU keyed by the sha256 of
    the source text. The static check is most of the cost of a first evaluation (1.1 ms of
    1.3 for ``claims``); building a regorus engine from a source known to compile is the
    rest. regorus's engines and programs are "unsendable" (pyo3: a thread may only use the
    objects it created), so the engines themselves cannot be shared between threads."""

    def __init__(self, size: int = ENGINE_CACHE_SIZE) -> None:
        self._lock = threading.Lock()
        self._errors: OrderedDict[str, list[CompileError]] = OrderedDict()
        self._checking: dict[str, threading.Lock] = {}  # one check per source at a time
        self._size = size

    def errors(self, source: str, digest: str) -> list[CompileError]:
        known = self._known(digest)
        if known is not None:
            return known
        with self._lock:
            checking = self._checking.setdefault(digest, threading.Lock())
        # Outside the shared lock: threads checking other sources carry on; those asking
        # for this one wait for its check instead of repeating it.
        with checking:
            known = self._known(digest)
            if known is not None:
                return known
            errors = compile_check(source)
            with self._lock:
                self._errors[digest] = errors
                self._checking.pop(digest, None)
                if len(self._errors) > self._size:
                    self._errors.popitem(last=False)
        return errors

    def _known(self, digest: str) -> list[CompileError] | None:
        with self._lock:
            known = self._errors.get(digest)
            if known is not None:
                self._errors.move_to_end(digest)
            return known


class EmbeddedBackend:
    """regorus in this process: compile checks shared by the process (``CompileVerdicts``),
    engines per (thread, source). Threads that serve requests or tasks live as long as
    their process (the web's pool, a worker's main thread), so each builds an engine once
    per policy version."""

    name = "embedded"

    def __init__(self) -> None:
        self._local = threading.local()
        self._verdicts = CompileVerdicts()

    def _engines(self) -> OrderedDict[str, Any]:
        engines = getattr(self._local, "engines", None)
        if engines is None:
            engines = self._local.engines = OrderedDict()
        return engines

    def _engine(self, policy: PolicySource) -> Any:
        # Keyed by the text's own digest, not the version a caller claims it has.
        digest = source_digest(policy.source)
        engines = self._engines()
        engine = engines.get(digest)
        if engine is not None:
            engines.move_to_end(digest)
            return engine
        errors = self._verdicts.errors(policy.source, digest)
        if errors:
            raise PolicyError("; ".join(str(error) for error in errors))
        engine = new_regorus_engine(policy.source, max_source_bytes=limits()["max_source_bytes"])
        engines[digest] = engine
        if len(engines) > ENGINE_CACHE_SIZE:
            engines.popitem(last=False)
        return engine

    def publish(self, policy: PolicySource) -> None:
        self._engine(policy)

    def value(self, policy: PolicySource, rule: str, input: dict[str, Any]) -> Any:
        engine = self._engine(policy)
        try:
            # Converting the dict costs no more than parsing its JSON text here, and less for
            # large inputs (a gallery flow: ~15% fewer instructions), so the dict is handed over.
            engine.set_input(input)
            return plain(engine.eval_rule(f"data.{policy.package}.{rule}"))
        except (RuntimeError, ValueError, TypeError) as error:
            if NO_SUCH_RULE in str(error):
                return None  # OPA answers an unknown rule as undefined; so do we
            raise PolicyError(parse_regorus_error(str(error)).message) from None


def evaluate(
    policy: PolicySource, rule: str, input: Any, *, backend: Backend | None = None
) -> Decision:
    """Evaluate ``rule`` of ``policy`` for ``input``. Never raises; fails closed."""
    started = time.perf_counter()
    backend = backend or current_backend()
    bounds = limits()

    def deny(message: str) -> Decision:
        return Decision(
            allow=False,
            reasons=[message],
            policy=policy.slug,
            version=policy.version,
            duration_ms=(time.perf_counter() - started) * 1000,
            error=message,
        )

    if not RULE_NAME.match(rule or ""):
        return deny(f"{rule!r} is not a rule name")
    if not isinstance(input, dict):
        return deny("the policy input must be a JSON object")
    size = input_size(input)
    if size is None:  # also an input nested deeper than orjson's 255 levels (stack safety)
        return deny("the policy input cannot be written as JSON or nests over 255 levels")
    if size > bounds["max_input_bytes"]:
        return deny(f"the input is {size} bytes, over the {bounds['max_input_bytes']} byte limit")
    try:
        value = backend.value(policy, rule, input)
    except PolicyError as error:
        return deny(f"policy evaluation failed: {error}")
    duration_ms = (time.perf_counter() - started) * 1000
    if duration_ms > bounds["timeout_ms"]:
        return deny(
            f"policy evaluation took {duration_ms:.0f} ms, over the {bounds['timeout_ms']} ms limit"
        )
    return decision_from_value(value, policy=policy, rule=rule, duration_ms=duration_ms)


@lru_cache(maxsize=4)
def _backend_for(opa_url: str) -> Backend:
    if opa_url:
        from .opa import OpaServerBackend

        return OpaServerBackend(opa_url)
    return EmbeddedBackend()


def current_backend() -> Backend:
    """The configured backend: the OPA server when ``OPA_URL`` is set, else regorus."""
    return _backend_for(settings.FLOWGATE.get("OPA_URL", "") or "")
