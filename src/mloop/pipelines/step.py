"""``@step``: a Python function with typed inputs, outputs and parameters, as one node of a pipeline.

The function's signature says everything::

    @step
    def featurize(raw: pd.DataFrame, *, scale: float = 1.0) -> np.ndarray: ...

- **Inputs** are the positional-or-keyword parameters: each names an output of another step (``raw`` is the
  output called ``raw``); ``inputs={"raw": "load"}`` wires a parameter to an output of another name.
- **Parameters** are the keyword-only parameters (after ``*``); their defaults are the step's defaults, and a
  pipeline run can override them (``params={"scale": 2.0}`` or ``{"featurize.scale": 2.0}``).
- **Outputs**: one output named after the step by default (its type is the return annotation);
  ``outputs=("X", "y")`` names several, returned as a tuple (``-> tuple[np.ndarray, np.ndarray]``).

``cache`` (``True``, ``False`` or a :class:`~mloop.pipelines.policies.CachePolicy`), ``retries`` (with
``backoff`` seconds, doubled each attempt) and ``timeout`` (seconds) control execution; ``resources``
(``{"cpu": 2, "memory": 4e9}``) is what an attempt needs on a compute target that schedules by resources
(Dask). Steps must be defined at module level, so the worker processes can import them.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, overload

from mloop.errors import InvalidInput, shown
from mloop.pipelines.policies import CachePolicy, as_policy

__all__ = ["Param", "Step", "step"]

_NAME_OK = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


@dataclass(frozen=True)
class Param:
    """A step parameter: its name, annotation (``Any`` when missing) and default (``Param.REQUIRED`` if none)."""

    name: str
    annotation: Any
    default: Any

    REQUIRED: typing.ClassVar[object] = inspect.Parameter.empty

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty


def _check_name(kind: str, name: str, fn_name: str) -> str:
    if not isinstance(name, str) or not name or not set(name) <= _NAME_OK:
        raise InvalidInput(
            f"Step {fn_name!r}: {kind} name {shown(name)} is not valid. Use letters, digits, '_' and '-'."
        )
    return name


def _check_resources(step_name: str, resources: Mapping[str, float] | None) -> dict[str, float]:
    """``{"cpu": 2, "memory": 4e9}``: what one attempt needs (a Dask worker resource each; ``local`` ignores them)."""
    if resources is None:
        return {}
    if not isinstance(resources, Mapping):
        raise InvalidInput(f"Step {step_name!r}: resources={shown(resources)} must be a dict like {{'cpu': 2}}.")
    out: dict[str, float] = {}
    for key, value in resources.items():
        if not isinstance(key, str) or not key:
            raise InvalidInput(f"Step {step_name!r}: resource name {shown(key)} must be a non-empty string.")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise InvalidInput(
                f"Step {step_name!r}: resources[{key!r}]={shown(value)} must be a number > 0 (e.g. 'cpu': 2)."
            )
        out[key] = float(value)
    return out


class Step:
    """A pipeline step made by :func:`step`. Calling it calls the function (handy in tests)."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        outputs: Sequence[str] | None = None,
        inputs: Mapping[str, str] | None = None,
        cache: bool | CachePolicy = True,
        retries: int = 0,
        backoff: float = 1.0,
        timeout: float | None = None,
        resources: Mapping[str, float] | None = None,
    ) -> None:
        if not callable(fn):
            raise InvalidInput(f"@step needs a function, got {shown(fn)}. Put @step on a `def`.")
        self.fn = fn
        self.name = _check_name("step", name or fn.__name__, fn.__name__)
        if "<locals>" in fn.__qualname__ or "<lambda>" in fn.__qualname__:
            raise InvalidInput(
                f"Step {self.name!r} is defined inside a function ({fn.__qualname__}); worker processes cannot "
                "import it. Define the step at module level."
            )
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise InvalidInput(f"Step {self.name!r}: retries={shown(retries)} must be an integer >= 0.")
        if timeout is not None and (not isinstance(timeout, (int, float)) or timeout <= 0):
            raise InvalidInput(f"Step {self.name!r}: timeout={shown(timeout)} must be a number of seconds > 0.")
        if not isinstance(backoff, (int, float)) or backoff < 0:
            raise InvalidInput(f"Step {self.name!r}: backoff={shown(backoff)} must be a number of seconds >= 0.")
        self.cache = as_policy(cache, self.name)
        self.resources = _check_resources(self.name, resources)
        self.retries, self.backoff, self.timeout = retries, float(backoff), timeout
        try:
            hints = typing.get_type_hints(fn)
        except Exception:  # unresolvable forward references: fall back to the raw annotations
            hints = dict(getattr(fn, "__annotations__", {}))
        sig = inspect.signature(fn)
        self.params: dict[str, Param] = {}
        self.inputs: dict[str, str] = {}  # argument name -> the output it reads
        self.input_types: dict[str, Any] = {}
        for p in sig.parameters.values():
            annotation = hints.get(p.name, Any)
            if p.kind is inspect.Parameter.KEYWORD_ONLY:
                self.params[p.name] = Param(p.name, annotation, p.default)
            elif p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.POSITIONAL_ONLY):
                self.inputs[p.name] = p.name
                self.input_types[p.name] = annotation
            else:
                raise InvalidInput(
                    f"Step {self.name!r}: *{p.name} / **{p.name} is not allowed; declare each input and parameter "
                    "by name (inputs before `*`, parameters after it)."
                )
        for arg, source in (inputs or {}).items():
            if arg not in self.inputs:
                raise InvalidInput(
                    f"Step {self.name!r}: inputs={{{arg!r}: ...}} names no input argument; its inputs are "
                    f"{sorted(self.inputs)}. Use one of those names."
                )
            self.inputs[arg] = _check_name("input", source, self.name)
        returns = hints.get("return", Any)
        names = [self.name] if outputs is None else [_check_name("output", o, self.name) for o in outputs]
        if outputs is not None and (isinstance(outputs, str) or not names):
            raise InvalidInput(f"Step {self.name!r}: outputs={shown(outputs)} must be a non-empty list of names.")
        if outputs is None or len(names) == 1:
            types = [returns]
        else:
            args = typing.get_args(returns) if typing.get_origin(returns) is tuple else ()
            types = list(args) if len(args) == len(names) and Ellipsis not in args else [Any] * len(names)
        self.outputs: dict[str, Any] = dict(zip(names, types, strict=True))
        self.multiple = outputs is not None and len(names) > 1

    @property
    def module(self) -> str:
        return self.fn.__module__

    @property
    def qualname(self) -> str:
        return self.fn.__qualname__

    def resolve_params(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults overridden by ``given`` (already narrowed to this step's names); missing required ones fail."""
        resolved: dict[str, Any] = {}
        for name, p in self.params.items():
            if name in given:
                resolved[name] = given[name]
            elif p.required:
                raise InvalidInput(
                    f"Step {self.name!r} needs parameter {name!r}. Pass it: params={{'{self.name}.{name}': ...}} "
                    f"or `-p {self.name}.{name}=VALUE`."
                )
            else:
                resolved[name] = p.default
        return resolved

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<Step {self.name!r} inputs={sorted(self.inputs.values())} outputs={list(self.outputs)}>"


@overload
def step(fn: Callable[..., Any], /) -> Step: ...


@overload
def step(
    *,
    name: str | None = None,
    outputs: Sequence[str] | None = None,
    inputs: Mapping[str, str] | None = None,
    cache: bool | CachePolicy = True,
    retries: int = 0,
    backoff: float = 1.0,
    timeout: float | None = None,
    resources: Mapping[str, float] | None = None,
) -> Callable[[Callable[..., Any]], Step]: ...


def step(fn: Callable[..., Any] | None = None, /, **options: Any) -> Step | Callable[[Callable[..., Any]], Step]:
    """Make a function a pipeline step: ``@step`` or ``@step(outputs=..., cache=..., retries=..., timeout=...)``."""
    if fn is not None:
        return Step(fn, **options)

    def decorate(f: Callable[..., Any]) -> Step:
        return Step(f, **options)

    return decorate
