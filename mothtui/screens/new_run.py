"""The new-run form: a preset, the main config keys, validation inline, and launch.

Validation is `core.config.resolve` itself (pure Python, no jax), so the form accepts exactly what
`mothtui train` accepts; a `ConfigError` names its key and the message is shown under that field.
Only fields that differ from the preset become `--set` overrides, so the launched command line
stays short and says what the user changed.

Under the command line, the plan of a valid form: memory against the device's, the predicted time
here and on one H100 and one H200, from `mothtui plan --json` run as a process (the app never
imports jax). It starts PLAN_DEBOUNCE_S after the last change, and a newer change (or leaving the
form) cancels it and kills the process; "planning…" shows meanwhile, and the refusal's line when
the config would not fit.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any, cast

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, Label, Select, Static

from core.config import PRESETS, PRUNING_MODES, ConfigError, key_help, resolve
from core.errors import StoreError
from core.formatting import fmt_bytes, fmt_duration
from core.runlist import new_run_id, run_path
from mothtui import cmdline
from mothtui.jobs import run_captured
from mothtui.screens.dialogs import HELP_FIRST

if TYPE_CHECKING:
    from mothtui.app import MothApp

#: The keys the form shows, in order; any other key goes in the free `--set` field.
FORM_KEYS = ("nets", "samples", "hidden", "schedule", "epochs_per_level", "learning_rate", "batch",
             "pruning", "threshold", "seed")
#: Keys with a fixed set of values: a Select of those values instead of free text.
CHOICES = {"pruning": PRUNING_MODES}
#: Seconds of no change before the plan of the form is asked for.
PLAN_DEBOUNCE_S = 0.6
PLANNING = "plan: planning…"


def _about(seconds: float) -> str:
    return "<1s" if seconds < 0.5 else fmt_duration(seconds)


def plan_line(code: int, stdout: str, stderr: str) -> str:
    """The form's plan line from `mothtui plan --json`'s exit code and output."""
    if code == 0:
        try:
            plan = json.loads(stdout)
            memory, times = plan["memory"], plan["time"]
            gpus = times["gpus"]
            return (f"plan: memory {fmt_bytes(memory['peak'])} of {fmt_bytes(memory['limit'])} · "
                    f"about {_about(times['here']['total_s'])} here · "
                    f"H100 {_about(gpus['H100']['run_s'])} · H200 {_about(gpus['H200']['run_s'])}")
        except (ValueError, KeyError, TypeError):
            return "plan: ⚠ unreadable answer from mothtui plan"
    lines = stderr.strip().splitlines()
    return "plan: ⚠ " + (lines[-1].removeprefix("mothtui: ") if lines else f"mothtui plan exited with code {code}")


def _text(value: Any) -> str:
    """A config value as the user would type it after `--set key=`."""
    if isinstance(value, (list, tuple)):
        return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def form_overrides(preset: str, fields: dict[str, str], extra: str) -> list[str]:
    """`key=value` items for fields that differ from the preset, plus the free-form extras."""
    base = resolve(preset).to_dict()
    items = [f"{key}={_toml(key, text)}" for key, text in fields.items()
             if text.strip() and text.strip() != _text(base[key])]
    items += extra_items(extra)
    return items


def extra_items(extra: str) -> list[str]:
    """The `key=value` items of the free `--set` field (`;` between them)."""
    return [part.strip() for part in extra.split(";") if part.strip()]


def error_field(err: ConfigError, extra: str) -> str:
    """The form field a ConfigError belongs to: the `--set` field when it holds the error's key
    (or the error names no key, or one not on the form), else that key's own field."""
    typed = {item.split("=", 1)[0].strip() for item in extra_items(extra)}
    if err.key is None or err.key in typed or err.key not in FORM_KEYS:
        return "extra"
    return err.key


def _toml(key: str, text: str) -> str:
    """Lists need brackets for TOML; strings need quotes only if they are not plain words."""
    text = text.strip()
    if key in ("hidden", "schedule") and not text.startswith("["):
        return f"[{text}]"
    return text


class NewRunScreen(Screen):
    """Fill in, read the inline errors, `ctrl+s` (or the button) launches the engine."""

    if TYPE_CHECKING:
        app: MothApp  # Textual types `self.app` as App

    BINDINGS = [
        HELP_FIRST,
        Binding("ctrl+s", "launch", "launch", priority=True, id="new.launch"),
        Binding("escape", "app.pop_screen", "back", id="new.back"),
    ]

    def compose(self) -> ComposeResult:
        yield Static("[b]New run[/b]  every field is a config key; blank = the preset's value",
                     classes="screen-header")
        with VerticalScroll(id="new-form"):
            with Horizontal(classes="form-row"):
                yield Label("preset", classes="form-label")
                yield Select([(name, name) for name in PRESETS], value="smoke", allow_blank=False,
                             id="field-preset", compact=True)
            with Horizontal(classes="form-row"):
                yield Label("run id", classes="form-label")
                yield Input(id="field-id", compact=True,
                            tooltip="the run's directory name in the store (--id); blank: date, time and preset")
            yield Static("", id="error-id", classes="form-error")
            for key in FORM_KEYS:
                with Horizontal(classes="form-row"):
                    yield Label(key, classes="form-label")
                    if key in CHOICES:
                        yield Select([(v, v) for v in CHOICES[key]], allow_blank=False, id=f"field-{key}",
                                     tooltip=key_help(key), compact=True)
                    else:
                        yield Input(id=f"field-{key}", tooltip=key_help(key), compact=True)
                yield Static("", id=f"error-{key}", classes="form-error")
            with Horizontal(classes="form-row"):
                yield Label("--set", classes="form-label")
                yield Input(placeholder="more keys: key=value; key=value", id="field-extra", compact=True)
            yield Static("", id="error-extra", classes="form-error")
            yield Static("", id="new-command", classes="form-command", markup=False)
            yield Static("", id="new-plan", classes="form-plan")
            yield Button("Launch (ctrl+s)", id="launch", variant="primary")
        yield Footer()

    def on_mount(self) -> None:
        self._filled: str | None = None
        self._planned: tuple | None = None  # the (preset, overrides) the plan line is for
        self.problem: tuple[str, str] | None = None  # (field, message) of the form's error, None: valid
        self._fill("smoke")
        self.query_one("#field-nets", Input).focus()

    @property
    def preset(self) -> str:
        return str(self.query_one("#field-preset", Select).value)

    def _field(self, key: str) -> Input | Select[str]:
        """The form's widget of config key `key`: a Select where the key has choices, else an Input."""
        return cast("Input | Select[str]", self.query_one(f"#field-{key}"))

    def _fill(self, preset: str) -> None:
        self._filled = preset
        values = resolve(preset).to_dict()
        for key in FORM_KEYS:
            self._field(key).value = _text(values[key])
        self._suggest_id()
        self.validate()

    def _suggest_id(self) -> None:
        """The id a blank run-id field stands for, as the placeholder (the CLI's default id)."""
        import datetime as dt

        now = dt.datetime.fromtimestamp(self.app.clock())
        self.query_one("#field-id", Input).placeholder = new_run_id(self.app.runs_dir, self.preset, now)

    def run_id(self) -> str:
        """The run id the launch uses: the one typed, else the suggested one."""
        field = self.query_one("#field-id", Input)
        return field.value.strip() or field.placeholder

    def fields(self) -> dict[str, str]:
        return {key: str(self._field(key).value) for key in FORM_KEYS}

    def command(self, overrides: list[str]) -> cmdline.CommandLine:
        """The command line the launch runs (and the `will run:` line shows)."""
        return cmdline.train(self.app.runs_dir, self.preset, overrides, self.run_id())

    def _id_problem(self) -> str | None:
        typed = self.query_one("#field-id", Input).value.strip()
        if not typed:
            return None
        try:
            path = run_path(self.app.runs_dir, typed)
        except StoreError:
            return f"run id {typed!r}: use letters, digits, - _ . (no / and not starting with .)"
        if path.exists():
            return f"run id {typed!r} is taken in {self.app.runs_dir}: choose another"
        if any(c.isspace() for c in typed):
            return f"run id {typed!r}: no spaces"
        return None

    def validate(self) -> list[str] | None:
        """Overrides if the form is valid, else None (and the message under the field it concerns)."""
        for key in (*FORM_KEYS, "extra", "id"):
            self._error(key, "")
        self.problem = None
        extra = self.query_one("#field-extra", Input).value
        try:
            overrides = form_overrides(self.preset, self.fields(), extra)
            resolve(self.preset, overrides=overrides)
            problem = self._id_problem()
        except ConfigError as err:
            self.problem = (error_field(err, extra), str(err))
        else:
            if problem:
                self.problem = ("id", problem)
        if self.problem is not None:
            self._error(self.problem[0], f"⚠ {self.problem[1]}")
            self.query_one("#launch", Button).disabled = True
            self.query_one("#new-command", Static).update("")
            self._plan(None)
            return None
        self.query_one("#launch", Button).disabled = False
        self.query_one("#new-command", Static).update(f"will run: {self.command(overrides).shell()}")
        self._plan(overrides)
        return overrides

    # ---- the plan line ---------------------------------------------------------------------
    def _plan(self, overrides: list[str] | None) -> None:
        """Ask for the plan of a valid form (None: the form is not valid: no plan)."""
        make = getattr(self.app, "plan_command", None)
        want = None if overrides is None or make is None else (self.preset, tuple(overrides))
        if want == getattr(self, "_planned", None):
            return
        self._planned = want
        self.workers.cancel_group(self, "plan")
        line = self.query_one("#new-plan", Static)
        line.update("" if want is None else PLANNING)
        line.display = want is not None
        if want is not None and make is not None and overrides is not None:  # want is None unless both are
            command = make(self.app.runs_dir, self.preset, list(overrides))
            self.run_worker(self._run_plan(command), group="plan", exclusive=True, exit_on_error=False)

    async def _run_plan(self, command: list[str]) -> None:
        await asyncio.sleep(PLAN_DEBOUNCE_S)
        code, out, err = await run_captured(command)
        self.query_one("#new-plan", Static).update(plan_line(code, out, err))

    def _error(self, key: str, text: str) -> None:
        """Show (or hide) the message under a field; hidden rows take no space at 80x24."""
        line = self.query_one(f"#error-{key}", Static)
        line.update(text)
        line.display = bool(text)

    def on_select_changed(self, event: Select.Changed) -> None:
        # the Select announces its first value while the form may still be mounting: on_mount fills it
        if getattr(self, "_filled", None) is None or event.value is Select.BLANK:
            return
        if event.select.id == "field-preset" and self._filled != str(event.value):
            self._fill(str(event.value))
        elif event.select.id != "field-preset":
            self.validate()

    def on_input_changed(self, event: Input.Changed) -> None:
        if getattr(self, "_filled", None) is not None:  # not while the form is mounting
            self.validate()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.focus_next()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "launch":
            self.action_launch()

    def action_launch(self) -> None:
        overrides = self.validate()
        if overrides is None:
            assert self.problem is not None  # validate() says what is wrong
            field, message = self.problem
            self.query_one(f"#field-{field}").focus()  # and scrolled to, with its message under it
            self.query_one(f"#error-{field}").scroll_visible(animate=False)
            self.notify(message, title="not launched", severity="warning")
            return
        self.app.launch_run(self.preset, overrides, self.run_id(), self.command(overrides))
