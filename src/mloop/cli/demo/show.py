"""What the demo prints: numbered steps (a spinner while one runs, then a tick with its time), one line per
event of the loop as it happens, the gate's tables, and at the end the summary, the lineage and where to look."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Steps", "describe_event", "print_commands", "print_gate", "print_lineage", "print_summary"]


@dataclass
class Steps:
    """``[n/N] title`` with a spinner while it runs, ``✓ [n/N] title (1.2 s)`` when done; phases and their
    seconds are kept for the summary and ``--json``."""

    out: Any
    total: int
    phases: list[dict[str, Any]] = field(default_factory=list)

    @contextmanager
    def step(self, name: str, title: str) -> Iterator[None]:
        number = len(self.phases) + 1
        started = time.perf_counter()
        self.out.print(f"[bold][{number}/{self.total}] {title}[/]")
        try:
            with self.out.status(f"{title} ..."):
                yield
        except BaseException:
            self.phases.append({"name": name, "title": title, "seconds": round(time.perf_counter() - started, 2),
                                "ok": False})  # fmt: skip
            raise
        seconds = time.perf_counter() - started
        self.phases.append({"name": name, "title": title, "seconds": round(seconds, 2), "ok": True})
        self.out.print(f"[green]✓[/] [dim]{title} ({seconds:.1f} s)[/]")

    def note(self, text: str, *, style: str = "") -> None:
        """One indented line under the running step (plain text: names from data are never markup)."""
        from rich.text import Text

        self.out.print(Text("    " + text, style=style))


def _num(value: Any, digits: int = 2) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else str(value)


def describe_event(event: Any) -> tuple[str, str] | None:
    """One line (and its style) for an event of the loop worth showing, or ``None`` to leave it out."""
    p, kind = event.payload, event.type
    if kind == "monitor.alert":
        if p.get("state") == "still_open":
            return None  # every window of drifted traffic says so; the opening and the resolution are news
        f = p.get("figures") or {}
        what = p.get("signal", "?") + (f" {p['feature']}" if p.get("feature") else "")
        method = f" ({f['method']})" if f.get("method") else ""
        style = "red" if p.get("state") == "opened" else "green"
        return f"alert {p.get('state')}: {what} = {_num(f.get('value'))} vs threshold {_num(f.get('threshold'))}" \
               f"{method} on {f.get('rows')} rows", style  # fmt: skip
    if kind == "model.version_registered":
        return f"registered {event.subject} (by {event.actor})", "cyan"
    if kind == "model.evaluated":
        return f"evaluated {event.subject} on {p.get('data', '?')} (by {event.actor})", "cyan"
    if kind == "model.alias_moved":
        return f"{event.subject} → version {p.get('version')} ({p.get('reason', 'moved')}, by {event.actor})", "green"
    if kind == "model.promotion_refused":
        return f"gate refused {event.subject} for @{p.get('alias')} (by {event.actor})", "yellow"
    if kind == "deployment.rollout_started":
        return f"canary: {p.get('model')} at {_num(p.get('canary_percent'), 0)}% (stable {p.get('stable')})", "magenta"
    if kind == "deployment.rollout_step":
        return f"canary step: {p.get('reason', '')}", "magenta"
    if kind == "deployment.rollout_finished":
        return f"rollout finished: {p.get('model')} takes 100% (replaced {p.get('replaced')})", "green"
    if kind == "deployment.rolled_back":
        return f"rolled back to {p.get('model')}: {p.get('reason', '')}", "red"
    return None


def print_gate(out: Any, report: Mapping[str, Any], *, title: str) -> None:
    """The gate's checks as a table: check, PASS/FAIL, measured, required."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, title_justify="left")
    for col in ("check", "result", "measured", "required"):
        table.add_column(col, overflow="fold")
    for c in report.get("checks", []):
        mark = Text("PASS", style="green") if c["passed"] else Text("FAIL", style="bold red")
        table.add_row(Text(c["check"]), mark, Text(str(c["measured"])), Text(str(c["required"])))
    out.print(table)


def print_summary(out: Any, result: Any) -> None:
    """The phases with their time, then what the loop made."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title="mloop demo: the closed loop", title_justify="left")
    table.add_column("step")
    table.add_column("seconds", justify="right")
    for p in result.phases:
        table.add_row(Text(p["title"]), f"{p['seconds']:.1f}")
    table.add_row(Text("total", style="bold"), f"{result.seconds:.1f}")
    out.print(table)
    facts = Table(show_header=False, box=None)
    facts.add_column(style="bold")
    facts.add_column()
    for key, value in result.facts():
        facts.add_row(key, Text(value))
    out.print(facts)


def _what_run(context: Any, ref: str) -> str:
    """`` (step fit of pipeline retrain)`` for a pipeline's run; empty for anything else."""
    from mloop.errors import MloopError
    from mloop.pipelines.results import TAG

    if not ref.startswith("run:"):
        return ""
    try:
        tags = context.store.get_run(ref.removeprefix("run:")).tags
    except MloopError:
        return ""
    if tags.get(TAG.KIND) == "step":
        return f" (step {tags.get(TAG.STEP)} of pipeline {tags.get(TAG.PIPELINE)})"
    return f" (pipeline {tags[TAG.PIPELINE]})" if tags.get(TAG.PIPELINE) else ""


def _grow(context: Any, tree: Any, node: Any) -> None:
    from rich.text import Text

    for child in node.children:
        label = Text(child.ref + _what_run(context, child.ref), style="green" if child.ref.startswith("model:") else "")
        label.append(f"  ← {child.relation}" if child.relation else "", style="dim")
        if child.repeated:
            label.append("  (shown above)", style="dim italic")
        _grow(context, tree.add(label), child)


def print_lineage(out: Any, context: Any, ref: str) -> None:
    """What ``mloop lineage REF`` shows first: what REF was made from, and what it was evaluated on."""
    from rich.text import Text
    from rich.tree import Tree

    from mloop.datasets.lineage import lineage_tree

    trees = lineage_tree(context, ref)
    for title, key in (("Made from", "upstream"), ("Evaluated on", "evaluated_on")):
        node = trees[key]
        tree = Tree(Text(f"{title}: {node.ref}", style="bold"))
        if node.children:
            _grow(context, tree, node)
        else:
            tree.add(Text("nothing recorded", style="dim"))
        out.print(tree)


def print_commands(out: Any, root: Any, *, hint: str | None) -> None:
    import os

    out.print("Look around (from the demo folder):")
    if hint is not None:
        out.print(hint, markup=False)
    if os.environ.get("MLOOP_URI") or os.environ.get("MLOOP_ARTIFACT_URI"):
        out.print("MLOOP_URI / MLOOP_ARTIFACT_URI are set in your environment and would win over the demo folder's "
                  "workspace: run `unset MLOOP_URI MLOOP_ARTIFACT_URI` first.", markup=False)  # fmt: skip
    for line in (
        f"cd {root}",
        "mloop automations history",
        "mloop lineage model:sensors@production",
        "mloop monitors show sensors --html report.html",
        "mloop deploy status sensors",
        "mloop models versions sensors",
        "mloop events list --subject deployment:sensors",
        "mloop pipelines trigger retrain     # every step reused from the cache",
    ):
        out.print(f"  {line}", markup=False, highlight=False)
