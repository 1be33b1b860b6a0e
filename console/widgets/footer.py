"""The footer of every screen: the keys that work here, fitted to the terminal's width.

Textual's Footer lists the focused widget's keys, then the screen's, then the app's, and cuts what
does not fit: at 80 columns the global keys (1-4 screens, ? help, q quit) went first. This one gives
way in a fixed order until the keys fit, and keeps the global keys to the last:

  1. the focused widget's keys (a table's pgup/pgdn: every table has them, `?` lists them);
  2. the screen keys of the app (1 2 3 4) as one group, "1 2 3 4 Screens";
  3. the command palette key (ctrl+p still works, and `?` names it);
  4. the screen's own descriptions cut to their first word ("Status filter" -> "Status");
  5. the screen's last keys, one by one (`?` lists them all).
"""
from rich.cells import cell_len
from textual.widgets import Footer
from textual.widgets._footer import FooterKey, FooterLabel

# App bindings that share an action (goto('clients'), goto('log'), ...) are grouped under a word.
GROUP_LABELS = {"goto": "Screens"}


def _action_name(action):
    return action.split("(", 1)[0]


class KeyFooter(Footer):
    DEFAULT_CSS = """
    KeyFooter.-compact FooterLabel {
        margin: 0 1 0 0;
    }
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("compact", True)
        super().__init__(**kwargs)
        self._fitted_width = None
        self.level = 0  # how far it gave way at its last compose (0: every key as Textual shows it)

    # -- what there is to show ----------------------------------------------------------------------

    def _entries(self):
        """[(tier, binding, enabled, tooltip)], one per action as Textual's Footer shows them; tier:
        'widget' (the focused widget and its containers), 'screen' or 'app'."""
        seen, entries = set(), []
        for node, binding, enabled, tooltip in self.screen.active_bindings.values():
            if not binding.show or binding.action in seen:
                continue
            seen.add(binding.action)
            tier = "app" if node is self.app else "screen" if node is self.screen else "widget"
            entries.append((tier, binding, enabled, tooltip))
        return entries

    def _palette(self):
        if not (self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE):
            return None
        return self.screen.active_bindings.get(self.app.COMMAND_PALETTE_BINDING)

    def _plan(self, entries, level):
        """[("key", binding, enabled, tooltip, description, tier) | ("group", [(binding, enabled,
        tooltip)], label)] for a level of giving way."""
        if level >= 1:
            entries = [e for e in entries if e[0] != "widget"]
        plan = []
        for tier, binding, enabled, tooltip in entries:
            description = binding.description
            name = _action_name(binding.action)
            if level >= 2 and tier == "app" and name in GROUP_LABELS:
                if plan and plan[-1][0] == "group" and plan[-1][2] == GROUP_LABELS[name]:
                    plan[-1][1].append((binding, enabled, tooltip))
                else:
                    plan.append(("group", [(binding, enabled, tooltip)], GROUP_LABELS[name]))
                continue
            if level >= 4 and tier != "app" and description:
                description = description.split()[0].split("/")[0]
            plan.append(("key", binding, enabled, tooltip, description, tier))
        return plan

    def _width(self, plan, palette):
        display = self.app.get_key_display
        width = 0
        for item in plan:
            if item[0] == "key":
                _, binding, _, _, description, _ = item
                width += cell_len(display(binding)) + (1 + cell_len(description) if description else 0) + 1
            else:
                width += sum(cell_len(display(b)) + 1 for b, _, _ in item[1]) + cell_len(item[2]) + 1
        if palette is not None:
            _, binding, _, _ = palette
            width += cell_len(display(binding)) + 1 + cell_len(binding.description) + 1
        return width

    def fit(self, width):
        """(level, plan, palette) that fits `width` columns, giving way as little as it can."""
        entries, palette = self._entries(), self._palette()
        for level in range(5):
            plan = self._plan(entries, level)
            shown = palette if level < 3 else None
            if self._width(plan, shown) <= width:
                return level, plan, shown
        # 5: the screen's last keys go, one by one, before any global key does
        while self._width(plan, None) > width:
            last_own = max((i for i, item in enumerate(plan) if item[0] == "key" and item[5] != "app"),
                           default=None)
            if last_own is None:
                break
            del plan[last_own]
        return 5, plan, None

    # -- drawing ------------------------------------------------------------------------------------

    def compose(self):
        if not self._bindings_ready:
            return
        width = self.size.width or self.app.size.width
        self._fitted_width = width
        self.level, plan, palette = self.fit(width)
        display = self.app.get_key_display
        for item in plan:
            if item[0] == "key":
                _, binding, enabled, tooltip, description, _ = item
                yield FooterKey(binding.key, display(binding), description, binding.action,
                                disabled=not enabled, tooltip=tooltip).data_bind(compact=Footer.compact)
            else:
                for binding, enabled, tooltip in item[1]:
                    yield FooterKey(binding.key, display(binding), "", binding.action, disabled=not enabled,
                                    tooltip=tooltip or binding.description).data_bind(compact=Footer.compact)
                yield FooterLabel(item[2])
        if palette is not None:
            _node, binding, enabled, _tooltip = palette
            yield FooterKey(binding.key, display(binding), binding.description, binding.action,
                            classes="-command-palette", disabled=not enabled,
                            tooltip=binding.tooltip or binding.description)

    def on_resize(self, event):
        if self._bindings_ready and event.size.width != self._fitted_width:
            self.call_after_refresh(self.recompose)
