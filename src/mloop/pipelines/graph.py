"""The DAG of a pipeline, from the steps' declared inputs and outputs, validated before anything runs.

Every error is an :class:`~mloop.errors.InvalidInput` naming the step, the value and the fix: duplicate step or
output names, an input no step produces, an output type that cannot be an input's type, a cycle, an unknown
or missing parameter.
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from mloop.errors import InvalidInput, shown
from mloop.pipelines.step import Step

__all__ = ["Graph", "bind_params"]


def _close(name: str, choices: Sequence[str]) -> str:
    near = difflib.get_close_matches(name, choices, n=1)
    return f" Did you mean {near[0]!r}?" if near else ""


def _compatible(produced: Any, wanted: Any) -> bool:
    """``True`` unless both are plain classes (or generics of them) and the produced one is not a subclass."""
    if produced is Any or wanted is Any:
        return True
    produced = typing.get_origin(produced) or produced
    wanted = typing.get_origin(wanted) or wanted
    if not isinstance(produced, type) or not isinstance(wanted, type):
        return True  # unions, type variables, strings: not checked
    return issubclass(produced, wanted)


def _type_name(t: Any) -> str:
    return t.__qualname__ if isinstance(t, type) else repr(t).replace("typing.", "")


class Graph:
    """Steps, who produces each output, and the edges between steps. Construction validates everything."""

    def __init__(self, steps: Sequence[Step]) -> None:
        self.steps: dict[str, Step] = {}
        for s in steps:
            if not isinstance(s, Step):
                raise InvalidInput(f"{shown(s)} is not a step. Decorate the function with @step.")
            if s.name in self.steps:
                raise InvalidInput(
                    f"Two steps are named {s.name!r} ({self.steps[s.name].qualname} and {s.qualname}). "
                    "Rename one: @step(name=...)."
                )
            self.steps[s.name] = s
        if not self.steps:
            raise InvalidInput("A pipeline needs at least one step. Pass a list of @step functions.")
        self.producer: dict[str, str] = {}
        for s in self.steps.values():
            for out in s.outputs:
                if out in self.producer:
                    raise InvalidInput(
                        f"Output {out!r} is produced by both step {self.producer[out]!r} and step {s.name!r}. "
                        "Rename one: @step(outputs=[...]) or @step(name=...)."
                    )
                self.producer[out] = s.name
        self.upstream: dict[str, set[str]] = {name: set() for name in self.steps}
        for s in self.steps.values():
            for arg, source in s.inputs.items():
                if source not in self.producer:
                    raise InvalidInput(
                        f"Step {s.name!r} reads input {source!r}, which no step produces."
                        f"{_close(source, list(self.producer))} "
                        f"Outputs are {sorted(self.producer)}; rename the argument or map it: "
                        f"@step(inputs={{{arg!r}: 'OUTPUT'}})."
                    )
                producer = self.steps[self.producer[source]]
                if producer.name == s.name:
                    raise InvalidInput(f"Step {s.name!r} reads its own output {source!r}. A step cannot feed itself.")
                produced, wanted = producer.outputs[source], s.input_types[arg]
                if not _compatible(produced, wanted):
                    raise InvalidInput(
                        f"Step {s.name!r} input {arg!r} expects {_type_name(wanted)}, but step {producer.name!r} "
                        f"outputs {source!r} as {_type_name(produced)}. Fix one of the two annotations."
                    )
                self.upstream[s.name].add(producer.name)
        self.downstream: dict[str, set[str]] = {name: set() for name in self.steps}
        for name, ups in self.upstream.items():
            for u in ups:
                self.downstream[u].add(name)
        self.order = self._topological()

    def _topological(self) -> list[str]:
        """Kahn's algorithm in declaration order; a cycle is reported as a path."""
        waiting = {n: len(u) for n, u in self.upstream.items()}
        ready = [n for n in self.steps if waiting[n] == 0]
        order: list[str] = []
        while ready:
            n = ready.pop(0)
            order.append(n)
            for d in sorted(self.downstream[n], key=list(self.steps).index):
                waiting[d] -= 1
                if waiting[d] == 0:
                    ready.append(d)
        if len(order) < len(self.steps):
            stuck = [n for n in self.steps if n not in order]
            path, at = [stuck[0]], stuck[0]
            while True:
                at = next(u for u in sorted(self.upstream[at]) if u in stuck)
                if at in path:
                    cycle = [*path[path.index(at) :], at]
                    break
                path.append(at)
            raise InvalidInput(
                f"Steps form a cycle: {' <- '.join(cycle)} (each reads an output of the next). "
                f"Break it: step {cycle[0]!r} must not read an output of step {cycle[1]!r}."
            )
        return order

    def descendants(self, name: str) -> set[str]:
        seen: set[str] = set()
        todo = [name]
        while todo:
            for d in self.downstream[todo.pop()]:
                if d not in seen:
                    seen.add(d)
                    todo.append(d)
        return seen


def bind_params(graph: Graph, params: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Each step's resolved parameters. ``STEP.NAME`` sets one step's; a bare ``NAME`` every step that has it."""
    given: dict[str, dict[str, Any]] = {name: {} for name in graph.steps}
    known = sorted({f"{s.name}.{p}" for s in graph.steps.values() for p in s.params}
                   | {p for s in graph.steps.values() for p in s.params})  # fmt: skip
    for key, value in params.items():
        if not isinstance(key, str):
            raise InvalidInput(f"Parameter name {shown(key)} must be a string like 'STEP.NAME' or 'NAME'.")
        step_name, dot, pname = key.rpartition(".")
        if dot:
            s = graph.steps.get(step_name)
            if s is None or pname not in s.params:
                raise InvalidInput(
                    f"Unknown parameter {key!r}.{_close(key, known)} Known parameters: {known or 'none'}."
                )
            given[step_name][pname] = value
            continue
        targets = [s for s in graph.steps.values() if key in s.params]
        if not targets:
            raise InvalidInput(f"Unknown parameter {key!r}.{_close(key, known)} Known parameters: {known or 'none'}.")
        for s in targets:
            given[s.name].setdefault(key, value)
    for key, value in params.items():  # STEP.NAME wins over NAME whatever the order
        if "." in key:
            step_name, _, pname = key.rpartition(".")
            given[step_name][pname] = value
    return {name: graph.steps[name].resolve_params(given[name]) for name in graph.order}
