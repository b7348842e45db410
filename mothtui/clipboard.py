"""Copy text to the user's clipboard over SSH: OSC 52, wrapped for tmux when the app runs inside it.

Textual's `App.copy_to_clipboard` writes a bare `ESC ] 52 ; c ; <base64> BEL`. Inside tmux that
sequence stops at tmux, which forwards it to the outer terminal only when its own `set-clipboard`
allows (off in many setups), so a user in `ssh` + `tmux` gets nothing. Wrapped in tmux's
passthrough (`ESC P tmux; … ESC \\`, every ESC inside doubled) it reaches the outer terminal with
`allow-passthrough on` (tmux 3.3+); the README says how to turn both on. Standard library only.
"""

from __future__ import annotations

import base64
import os

#: Longest text sent: most terminals drop OSC 52 payloads beyond about 100 kB of base64.
MAX_BYTES = 74_000


def osc52(text: str, tmux: bool | None = None) -> str:
    """The escape sequence that puts `text` on the clipboard (`tmux`: wrap for tmux's passthrough;
    None: when `$TMUX` says the app runs inside tmux)."""
    data = text.encode("utf-8")[:MAX_BYTES]
    sequence = f"\x1b]52;c;{base64.b64encode(data).decode('ascii')}\a"
    if tmux is None:
        tmux = bool(os.environ.get("TMUX"))
    if tmux:
        return "\x1bPtmux;" + sequence.replace("\x1b", "\x1b\x1b") + "\x1b\\"
    return sequence


def copy(app, text: str, what: str) -> None:
    """Put `text` on the clipboard through the app's terminal and say what was copied."""
    app._clipboard = text  # what Textual's own copy keeps (paste inside the app)
    driver = getattr(app, "_driver", None)
    if driver is not None:
        driver.write(osc52(text))
    app.notify(f"copied {what}: {text}", title="clipboard", timeout=4)
