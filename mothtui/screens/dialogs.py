"""Small modal screens: confirm, help (every key that applies), and the message of an error."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.dom import DOMNode
from textual.screen import ModalScreen, Screen
from textual.widgets import Static


#: `? help` as every screen's first key, so the footer shows it first and an 80-column footer
#: cuts the screen's least used keys, never the way to see them all (same id as the app's key:
#: the settings' [keys] remap both).
HELP_FIRST = Binding("question_mark", "app.help", "help", id="app.help")


class ConfirmDialog(ModalScreen[bool]):
    """A yes/no question; dismisses with True on `y`/`enter`, False on `n`/`esc`."""

    BINDINGS = [
        Binding("y,enter", "answer(True)", "yes", id="confirm.yes"),
        Binding("n,escape", "answer(False)", "no", id="confirm.no"),
    ]

    def __init__(self, question: str):
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.question, id="question")
            yield Static("[b]y[/b] yes   [b]n[/b]/[b]esc[/b] no", classes="dialog-keys")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


def key_label(key: str) -> str:
    """How a key is written on screen: `esc`, `?`, `[`."""
    return {"escape": "esc", "question_mark": "?", "slash": "/", "plus": "+", "minus": "-",
            "equals_sign": "=", "left_square_bracket": "[", "right_square_bracket": "]",
            "space": "space", "enter": "enter"}.get(key, key)


#: Keys every screen has that are not bindings of their own (Textual's focus keys; the palette's
#: ctrl+p is the app's own binding, listed with the app's keys).
GENERAL_KEYS = (("j/k/↑/↓", "move in lists"), ("tab/shift+tab", "next / previous field or pane"))
#: Textual's bindings of those keys, folded into GENERAL_KEYS (listed once, not twice).
GENERAL_BINDINGS = {"tab", "shift+tab"}


#: Descriptions of Textual's built-in widget keys that the help folds into GENERAL_KEYS.
GENERIC = {"select", "select cursor", "top", "bottom", "home", "end", "toggle", "show options"}


def help_entries(screen: Screen) -> list[tuple[str, str, bool]]:
    """(keys, description, applies now) for every binding of the screen, the focused widget and the app."""
    active = screen.active_bindings
    nodes: list[DOMNode] = [screen]  # the screen's own keys first, then the focused widget's, then the app's
    node: DOMNode | None = screen.focused
    while node is not None and node is not screen:
        nodes.append(node)
        node = node.parent
    nodes.append(screen.app)
    entries: dict[str, list] = {}
    keymap = getattr(screen.app, "_keymap", {})  # Textual's keymap (App.set_keymap): the settings' [keys]
    # mothtui's own keys first (screen, focused widget, app), then Textual's built-in ones
    ours = [(node, cls) for node in nodes for cls in type(node).__mro__ if cls.__module__.startswith("mothtui")]
    builtin = [(node, cls) for node in nodes for cls in type(node).__mro__
               if not cls.__module__.startswith("mothtui")]
    for node, cls in ours + builtin:
        for binding in Binding.make_bindings(cls.__dict__.get("BINDINGS", [])):
            text = binding.description
            if binding.action == "command_palette":  # `commands` in the footer
                text = "command palette: every action by name"
            if not text or text.lower() in GENERIC or text.startswith(("Scroll", "Page", "Cursor")):
                continue  # movement keys every list has: summarised by GENERAL_KEYS
            key = keymap.get(binding.id, binding.key) if binding.id else binding.key  # remapped in the settings
            if set(key.split(",")) <= GENERAL_BINDINGS:
                continue
            keys = binding.key_display or "/".join(key_label(k) for k in key.split(","))
            entry = entries.setdefault(text, [keys, False])
            if keys not in entry[0].split("/") and keys != entry[0]:
                entry[0] = f"{entry[0]}/{keys}"
            entry[1] = entry[1] or any(k in active for k in key.split(","))
    out = [(keys, text, available) for text, (keys, available) in entries.items()]
    return out + [(keys, text, True) for keys, text in GENERAL_KEYS]


class HelpScreen(ModalScreen[None]):
    """Every key of the screen below (and the app's), grouped; any of esc, q, ? closes it."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss_help", "close", id="help.close")]

    def __init__(self, under: Screen):
        super().__init__()
        self.under = under
        # read now, before this screen is pushed and takes the focus from the one below
        self.entries = help_entries(under)

    def compose(self) -> ComposeResult:
        name = self.under.__class__.__name__.removesuffix("Screen")
        text = Text.assemble((f"Keys: {name} screen", "bold"),
                             "   (dim: does not apply to the current selection)\n\n")
        for keys, description, available in self.entries:
            style = "" if available else "dim"
            text.append(f"  {keys:>16}", style=f"bold {style}".strip())
            text.append(f"  {description}\n", style=style)
        with Vertical(classes="dialog help"):
            yield VerticalScroll(Static(text, id="help-text"))
            yield Static("esc / q / ? close", classes="dialog-keys")

    def action_dismiss_help(self) -> None:
        self.dismiss(None)


class MessageDialog(ModalScreen[None]):
    """A message that needs reading (a failed job and its log tail); any key closes it."""

    BINDINGS = [Binding("escape,enter,q", "close", "close", id="message.close")]

    def __init__(self, title: str, body: str):
        super().__init__()
        self.title_text, self.body = title, body

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(f"[b]{self.title_text}[/b]")
            yield Static(self.body, markup=False, id="message-body")
            yield Static("enter / esc close", classes="dialog-keys")

    def action_close(self) -> None:
        self.dismiss(None)
