"""ctrl+t: the light or dark counterpart of the theme in use, so a theme picked in the palette
("Change theme") survives toggling: solarized-dark <-> solarized-light, nord <-> textual-light."""
DARK, LIGHT = "textual-dark", "textual-light"


def counterpart(name, themes):
    """The theme of the other darkness in `name`'s family (same first word: catppuccin-mocha ->
    catppuccin-latte), else textual's own light or dark. `themes`: {name: Theme}."""
    theme = themes.get(name)
    dark = True if theme is None else theme.dark
    family = name.split("-")[0]
    same_family = sorted(n for n, t in themes.items() if t.dark != dark and n.split("-")[0] == family)
    if same_family:
        return same_family[0]
    return LIGHT if dark else DARK


class ThemeToggle:
    """Remembers the pair a toggle moves within: the theme picked last and its counterpart (from
    catppuccin-latte, whose family has three dark themes, back to the one it came from)."""

    def __init__(self):
        self.pair = None

    def next(self, current, themes):
        if self.pair is None or current not in self.pair:
            self.pair = (current, counterpart(current, themes))
        return self.pair[1] if current == self.pair[0] else self.pair[0]
