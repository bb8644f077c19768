"""Retry policies: admins' rules that retry captured letters later, then park them.

``matching`` compiles and bounds the patterns (RE2), ``engine`` evaluates the
rules on the rows capture has just stored (called by ``store`` in the capture
transaction), ``rules`` checks, orders and audits admins' changes and reads the
stats. The display codes of the rules' modes and audit actions are registered here.
"""

from __future__ import annotations

from dashboard.core import display

display.register("policy_dry_run", "Dry run", display.INFO)
display.register("policy_active", "Active", display.OK)
display.register("policy_disabled", "Disabled", display.MUTED)
for _change, _text in (
    ("create", "Retry policy created"),
    ("update", "Retry policy edited"),
    ("mode", "Retry policy mode switched"),
    ("move", "Retry policy moved"),
    ("delete", "Retry policy deleted"),
):
    display.register(f"deadletters.policy_{_change}", _text)
