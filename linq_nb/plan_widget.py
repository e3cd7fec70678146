"""``PlanView``: a plan shown in a notebook with an Apply button that asks before deleting.

The widget holds no logic: the plan is :func:`linq_nb.plan`'s, applying is :meth:`Plan.apply`,
re-planning is :meth:`Plan.refresh`. It reports into its own children (``HTML.value``), never
by printing, so nbval, the browser and a test see the same thing::

    view = PlanView(linq_nb.plan("subscriptions.toml", client))
    view.apply_button.click()      # with deletes in the plan: asks first
    view.confirm_button.click()    # "Yes, delete N": applies
    view.result                    # the ApplyResult
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as widgets

from .plans import ApplyResult, Plan

__all__ = ["PlanView"]


class PlanView(widgets.VBox):
    """A plan (its table), an Apply button, a confirmation for deletes, progress and the outcome."""

    def __init__(self, plan: Plan, **kwargs: Any) -> None:
        self.plan = plan
        self.result: ApplyResult | None = None
        self.table = widgets.HTML()
        self.apply_button = widgets.Button(description="Apply", button_style="primary", icon="check")
        self.confirm_button = widgets.Button(button_style="danger", icon="trash",
                                             layout=widgets.Layout(width="auto", display="none"))
        self.cancel_button = widgets.Button(description="Cancel", icon="times", layout=widgets.Layout(display="none"))
        self.refresh_button = widgets.Button(description="Plan again", icon="refresh")
        self.progress = widgets.IntProgress(min=0, max=1, value=0, layout=widgets.Layout(display="none"))
        self.status = widgets.HTML()
        self.apply_button.on_click(self._on_apply)
        self.confirm_button.on_click(self._on_confirm)
        self.cancel_button.on_click(self._on_cancel)
        self.refresh_button.on_click(self._on_refresh)
        super().__init__([self.table, widgets.HBox([self.apply_button, self.confirm_button, self.cancel_button,
                                                    self.refresh_button]), self.progress, self.status], **kwargs)
        self._show()

    def _show(self) -> None:
        self.table.value = self.plan._repr_html_()
        self.apply_button.disabled = not self.plan.changed
        self._asking(False)

    def _asking(self, on: bool) -> None:
        deletes = self.plan.counts()["delete"]
        self.confirm_button.description = f"Yes, delete {deletes}"
        self.confirm_button.layout.display = "" if on else "none"
        self.cancel_button.layout.display = "" if on else "none"
        self.apply_button.disabled = on or not self.plan.changed

    def _on_apply(self, _: Any = None) -> None:
        if not self.plan.changed:
            self.status.value = "Nothing to apply: the account matches the file."
            return
        deletes = self.plan.counts()["delete"]
        if deletes:
            self._asking(True)
            self.status.value = f"<b>This plan deletes {deletes} subscription(s).</b> Confirm to apply it."
            return
        self._run()

    def _on_confirm(self, _: Any = None) -> None:
        self._asking(False)
        self._run()

    def _on_cancel(self, _: Any = None) -> None:
        self._asking(False)
        self.status.value = "Not applied: nothing was changed."

    def _on_refresh(self, _: Any = None) -> None:
        self.plan = self.plan.refresh()
        self.result = None
        self.status.value = ""
        self._show()

    def _run(self) -> None:
        steps = len(self.plan.pending)
        self.progress.max, self.progress.value = max(steps, 1), 0
        self.progress.layout.display = ""
        self.apply_button.disabled = True

        def report(line: str) -> None:
            if " done" in line or "failed" in line:
                self.progress.value += 1
            self.status.value = html.escape(line)

        self.result = self.plan.apply(progress=report)
        self.status.value = self.result._repr_html_()
        self.progress.bar_style = "success" if self.result.ok else "danger"
