"""Automations: rules "on an event or a schedule, where a condition holds, do an action", run by one engine.

The engine (:mod:`mloop.automation.engine`) runs inside ``mloop scheduler`` (:mod:`mloop.automation.service`);
rules and their conditions: :mod:`mloop.automation.spec`, :mod:`mloop.automation.rules`; what actions do:
:mod:`mloop.automation.actions`, :mod:`mloop.automation.pipeline_action`. See docs/automation.md.
"""

from mloop.automation.api import (
    apply_config,
    chain,
    create_automation,
    delete_automation,
    get_automation,
    list_actions,
    list_automations,
    set_paused,
)

__all__ = [
    "apply_config",
    "chain",
    "create_automation",
    "delete_automation",
    "get_automation",
    "list_actions",
    "list_automations",
    "set_paused",
]
