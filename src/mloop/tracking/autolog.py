"""``mloop.autolog()``: scikit-learn ``fit`` logs params, the training score and the fitted model.

Patching is per estimator class that defines ``fit``. Only the outermost ``fit`` logs (a Pipeline or a search
fitting inner estimators logs once). When no run is active, each ``fit`` gets a run of its own in the
experiment given to :func:`autolog`. ``autolog(disable=True)`` removes the patches.
"""

from __future__ import annotations

import functools
import io
import pickle
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from mloop.errors import InvalidInput

__all__ = ["autolog"]

_PATCH_MARK = "__mloop_autolog__"
_HOOK_MARK = "__mloop_autolog_hook__"
_IN_FIT: ContextVar[bool] = ContextVar("mloop_autolog_in_fit", default=False)
_MAX_PARAM_LEN = 500


def _param_text(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= _MAX_PARAM_LEN else text[: _MAX_PARAM_LEN - 3] + "..."


def _log_fit(estimator: Any, args: tuple[Any, ...], kwargs: dict[str, Any], options: dict[str, Any]) -> None:
    from mloop.tracking.fluent import active_run, start_run

    run = active_run()
    own = run is None
    if run is None:
        run = start_run(options["experiment"], tags={"mloop.autolog": "sklearn"})
    try:
        params = estimator.get_params(deep=True)
        run.log_params({k: _param_text(v) for k, v in params.items()})
        run.set_tags({"estimator_class": f"{type(estimator).__module__}.{type(estimator).__qualname__}"})
        X = args[0] if args else kwargs.get("X")
        y = args[1] if len(args) > 1 else kwargs.get("y")
        if y is not None and hasattr(estimator, "score"):
            try:
                run.log_metric("training_score", float(estimator.score(X, y)))
            except Exception as exc:  # a scorer that cannot run on training data is not fatal
                run.set_tag("training_score_error", f"{type(exc).__name__}: {exc}")
        if options["log_models"]:
            buf = io.BytesIO()
            pickle.dump(estimator, buf, protocol=pickle.HIGHEST_PROTOCOL)
            run.log_bytes(buf.getvalue(), "model/model.pkl")
    except BaseException:
        if own:
            run.end("FAILED")
        raise
    if own:
        run.end("FINISHED")


def _patched(original: Callable[..., Any], options: dict[str, Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _IN_FIT.get():
            return original(self, *args, **kwargs)
        token = _IN_FIT.set(True)
        try:
            result = original(self, *args, **kwargs)
        finally:
            _IN_FIT.reset(token)
        _log_fit(self, args, kwargs, options)
        return result

    setattr(fit, _PATCH_MARK, original)
    return fit


def _subclasses(root: type) -> list[type]:
    seen: list[type] = []
    stack: list[type] = [root]
    while stack:
        cls = stack.pop()
        subs: list[type] = type.__subclasses__(cls)
        for sub in subs:
            if sub not in seen:
                seen.append(sub)
                stack.append(sub)
    return seen


def _patch_class(cls: type, options: dict[str, Any]) -> bool:
    fit = cls.__dict__.get("fit")
    if fit is None or not callable(fit):
        return False
    setattr(cls, "fit", _patched(getattr(fit, _PATCH_MARK, fit), options))  # noqa: B010
    return True


def _unpatch_class(cls: type) -> bool:
    original = getattr(cls.__dict__.get("fit"), _PATCH_MARK, None)
    if original is None:
        return False
    setattr(cls, "fit", original)  # noqa: B010
    return True


def autolog(*, experiment: str | None = None, log_models: bool = True, disable: bool = False) -> int:
    """Patch scikit-learn estimators; returns how many classes were patched (or unpatched).

    Classes imported later are patched when they are defined (through ``BaseEstimator.__init_subclass__``),
    so calling ``autolog()`` first costs nothing like importing all of scikit-learn.
    """
    try:
        from sklearn.base import BaseEstimator
    except ImportError as exc:
        raise InvalidInput("mloop.autolog() needs scikit-learn: pip install scikit-learn.") from exc
    classes = _subclasses(BaseEstimator)
    hook = BaseEstimator.__dict__.get("__init_subclass__")
    ours = getattr(hook, _HOOK_MARK, False)
    parent_hook = getattr(hook, _PATCH_MARK, None) if ours else hook
    if disable:
        if ours:
            if parent_hook is None:
                delattr(BaseEstimator, "__init_subclass__")
            else:
                setattr(BaseEstimator, "__init_subclass__", parent_hook)  # noqa: B010
        return sum(_unpatch_class(cls) for cls in classes)
    options = {"experiment": experiment, "log_models": log_models}

    def __init_subclass__(cls: type, /, **kwargs: Any) -> None:
        if parent_hook is not None:
            parent_hook.__get__(None, cls)(**kwargs)
        else:
            super(BaseEstimator, cls).__init_subclass__(**kwargs)
        _patch_class(cls, options)

    new_hook: Any = classmethod(__init_subclass__)
    new_hook.__mloop_autolog__ = parent_hook
    new_hook.__mloop_autolog_hook__ = True
    setattr(BaseEstimator, "__init_subclass__", new_hook)  # noqa: B010
    return sum(_patch_class(cls, options) for cls in classes)
