"""Shared pieces of the pipeline tests: a project's files (a pipeline and two helper modules) and ``write``."""

from __future__ import annotations

import textwrap
from pathlib import Path

HELPERS = """
from deep import scale

def double(x):
    return scale(x) * 2
"""

DEEP = """
def scale(x):
    return x
"""

# a (param n) -> b (uses helpers) -> c ; d independent (param k); e reads a (no helpers)
FLOW = """
import helpers
from mloop.pipelines import Pipeline, step

@step
def a(*, n: int = 3) -> list:
    print("a ran with", n)
    return list(range(n))

@step
def b(a: list) -> list:
    return [helpers.double(x) for x in a]

@step
def c(b: list) -> int:
    return sum(b)

@step
def d(*, k: int = 1) -> str:
    return "d" * k

@step
def e(a: list) -> int:
    return len(a)

flow = Pipeline("flow", [a, b, c, d, e])
"""


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip())
    return path
