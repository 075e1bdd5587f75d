"""Step 1, CryptoToken: the token, key type and specification, hash, RSA padding, key label.

EdDSA (Ed25519, Ed448) is offered only once the token said it can make and sign with such keys
(CKM_EC_EDWARDS_KEY_PAIR_GEN and CKM_EDDSA listed); it has no hash to choose (PureEdDSA).
"""

from __future__ import annotations

from dataclasses import dataclass

from textual import on, work
from textual.app import ComposeResult
from textual.message import Message
from textual.widgets import Input, RadioButton, RadioSet, Select, Static

from tui_csr.core.keyspec import KEY_SPECS, HashAlg, KeyType
from tui_csr.service import GenerateParams
from tui_csr.ui.text import literal
from tui_csr.ui.widgets.toggles import StateCheckbox, StateRadioButton
from tui_csr.ui.wizard.common import Errors, FieldError, FieldRow, WizardStep, WorkFailed

_KEY_TYPES = {"type-rsa": KeyType.RSA, "type-ec": KeyType.EC, "type-ed": KeyType.EDDSA}
_SPEC_SETS = {KeyType.RSA: "#spec-rsa", KeyType.EC: "#spec-ec", KeyType.EDDSA: "#spec-ed"}
#: The Edwards-curve specs, offered only where the token can make them.
_EDDSA_SPECS = ("Ed25519", "Ed448")
_PADDINGS = {"pad-pkcs1": False, "pad-pss": True}
#: The profile choice that leaves it to the chosen groups' policies (no explicit profile).
FROM_GROUPS = ""
FROM_GROUPS_TEXT = "from the groups' policies"


def _spec_button(name: str, on: bool = False) -> RadioButton:
    spec = KEY_SPECS[name]
    # The bits alone for RSA: the key type is chosen on the row above, and "RSA 4096" as the
    # third button did not fit at 80 columns.
    text = str(spec.bits) if spec.key_type is KeyType.RSA else name
    button = StateRadioButton(text, value=on, name=name, id=f"spec-{name}")
    if spec.key_type is KeyType.EDDSA:
        button.disabled = True  # until the token says it can make it
    return button


class CryptoTokenStep(WizardStep):
    """Where the key pair is made and how the CSR is signed."""

    TITLE = "CryptoToken"
    FIELDS = frozenset({"key_spec", "hash", "pss", "label", "always_authenticate", "profile"})

    DEFAULT_CSS = """
    CryptoTokenStep RadioSet { layout: horizontal; width: 1fr; }
    CryptoTokenStep RadioSet > RadioButton { width: auto; margin-right: 1; }
    CryptoTokenStep RadioSet:focus { background-tint: $primary 15%; }
    CryptoTokenStep #token-label { text-style: bold; }
    CryptoTokenStep #padding-na { color: $text-muted; display: none; }
    CryptoTokenStep.-ec #padding, CryptoTokenStep.-ed #padding { display: none; }
    CryptoTokenStep.-ec #padding-na, CryptoTokenStep.-ed #padding-na { display: block; }
    CryptoTokenStep.-ec #spec-rsa, CryptoTokenStep.-ed #spec-rsa { display: none; }
    CryptoTokenStep #spec-ec, CryptoTokenStep #spec-ed { display: none; }
    CryptoTokenStep.-ec #spec-ec { display: block; }
    CryptoTokenStep.-ed #spec-ed { display: block; }
    CryptoTokenStep #type-ed, CryptoTokenStep #spec-ed > RadioButton:disabled { display: none; }
    CryptoTokenStep.-ed-ok #type-ed { display: block; }
    CryptoTokenStep #hash-na { color: $text-muted; display: none; }
    CryptoTokenStep.-ed #hash { display: none; }
    CryptoTokenStep.-ed #hash-na { display: block; }
    CryptoTokenStep .row-gap { height: 1; }
    CryptoTokenStep #always-auth { margin-top: 1; }
    CryptoTokenStep #profile { width: 1fr; }
    CryptoTokenStep #profile-row { margin-top: 1; }
    """

    @dataclass
    class SupportLoaded(Message):
        """The token's answer to which key specs it can make (name -> None or reason)."""

        support: dict[str, str | None]

    @dataclass
    class ProfilesLoaded(Message):
        """The profiles one may choose: (name, description) pairs."""

        profiles: list[tuple[str, str]]

    def compose(self) -> ComposeResult:
        """Token, key type and spec, hash, padding, label."""
        yield from self.heading()
        token = self.service.token.label if self.service.token is not None else "(no token)"
        yield FieldRow("Token", Static(token, id="token-label", markup=False))
        yield Static(classes="row-gap")
        yield FieldRow("Key type", RadioSet(
            StateRadioButton("RSA", value=True, id="type-rsa"), StateRadioButton("ECDSA", id="type-ec"),
            StateRadioButton("EdDSA", id="type-ed", disabled=True), id="key-type", compact=True))
        yield FieldRow("Key spec", RadioSet(
            _spec_button("RSA2048", True), _spec_button("RSA3072"), _spec_button("RSA4096"),
            id="spec-rsa", compact=True), RadioSet(
            _spec_button("P-256", True), _spec_button("P-384"), _spec_button("P-521"),
            id="spec-ec", compact=True), RadioSet(
            _spec_button("Ed25519", True), _spec_button("Ed448"), id="spec-ed", compact=True))
        yield FieldError(id="key_spec-error")
        yield Static("", id="spec-note", classes="hint", markup=False)
        yield FieldRow("Hash", RadioSet(
            *(StateRadioButton(h.display, value=h is HashAlg.SHA256, name=h.value, id=f"hash-{h.value}")
              for h in HashAlg), id="hash", compact=True),
            Static("None: EdDSA hashes as part of signing (RFC 8032).", id="hash-na"))
        yield FieldError(id="hash-error")
        yield FieldRow("RSA padding", RadioSet(
            StateRadioButton("PKCS#1 v1.5", value=True, id="pad-pkcs1"),
            StateRadioButton("PSS", id="pad-pss"), id="padding", compact=True),
            Static("Not used with ECDSA keys.", id="padding-na", markup=False))
        yield FieldError(id="pss-error")
        yield Static(classes="row-gap")
        yield FieldRow("Key label", Input(id="label", compact=True,
                                          placeholder="empty: the CN and today's date"))
        yield FieldError(id="label-error")
        yield Static("Unique in the store and on the token; left empty, it becomes CN-date.",
                     classes="hint", id="label-hint", markup=False)
        # A row of its own (no caption): at 80 columns the whole sentence fits only so.
        yield StateCheckbox(
            "Always authenticate (PIN before every signature)", id="always-auth",
            compact=True, tooltip="CKA_ALWAYS_AUTHENTICATE: the token asks for the PIN again "
            "before each use of the key (code-signing keys often should)")
        yield FieldError(id="always_authenticate-error")
        # Last, so that the keys of the rows above stay where they were (tab order).
        yield FieldRow("Profile", Select([(FROM_GROUPS_TEXT, FROM_GROUPS)], value=FROM_GROUPS,
                                         allow_blank=False, id="profile", compact=True),
                       id="profile-row")
        yield FieldError(id="profile-error")

    #: The label the wizard last suggested; a label equal to it is not "typed by the user".
    _auto_label = ""
    #: The choices as first shown (after the token said which specs it can make).
    _defaults: tuple[object, ...] = ()

    def on_mount(self) -> None:
        """Ask the token which key specs it can make."""
        self._defaults = self._choices()
        self._load_support()
        self._load_profiles()

    def _choices(self) -> tuple[object, ...]:
        return (self.key_type, self.key_spec, self.hash_name, self.pss,
                self.always_authenticate, self.profile)

    @work(exclusive=True, group="profiles", exit_on_error=False)
    async def _load_profiles(self) -> None:
        try:
            profiles = await self.service.profiles.list()
        except Exception as exc:  # shown by the wizard; "from the groups' policies" stays
            self.post_message(WorkFailed("Reading the request profiles", exc))
            return
        self.post_message(self.ProfilesLoaded([(p.name, p.description) for p in profiles]))

    @on(ProfilesLoaded)
    def _apply_profiles(self, event: ProfilesLoaded) -> None:
        select: Select[str] = self.query_one("#profile", Select)
        chosen = self._wanted_profile or self.profile
        names = [name for name, _ in event.profiles]
        self._profile_names = tuple(names)
        # Names and descriptions come from the store: shown literally (never as markup).
        options = [(literal(FROM_GROUPS_TEXT), FROM_GROUPS)] + [
            (literal(f"{name}: {text}" if text else name), name)
            for name, text in event.profiles]
        select.set_options(options)
        select.value = chosen if chosen in names else FROM_GROUPS
        self._defaults = self._choices()

    #: A profile asked for before the list arrived (a renewal's, a test's).
    _wanted_profile: str | None = None
    #: The profiles the select offers (once loaded).
    _profile_names: tuple[str, ...] = ()

    @on(Select.Changed, "#profile")
    def _profile_changed(self) -> None:
        self.query_one("#profile-error", FieldError).clear()

    @work(exclusive=True, group="spec-support", exit_on_error=False)
    async def _load_support(self) -> None:
        try:
            support = await self.service.spec_support()
        except Exception as exc:  # shown by the wizard; the specs stay selectable
            self.post_message(WorkFailed("Reading the token's key types", exc))
            return
        self.post_message(self.SupportLoaded(support))

    @on(SupportLoaded)
    def _apply_support(self, event: SupportLoaded) -> None:
        notes = []
        for button in self.query(RadioButton):
            if not button.id or not button.id.startswith("spec-") or button.name is None:
                continue
            reason = event.support.get(button.name)
            button.disabled = reason is not None
            if reason and button.name not in _EDDSA_SPECS:  # EdDSA ones are simply not offered
                notes.append(f"{button.name}: {reason}")
                button.tooltip = reason
        eddsa = any(event.support.get(name, "?") is None for name in _EDDSA_SPECS)
        self.query_one("#type-ed", RadioButton).disabled = not eddsa
        self.set_class(eddsa, "-ed-ok")
        if not eddsa and self.key_type is KeyType.EDDSA:
            self.query_one("#type-rsa", RadioButton).value = True
        for set_id in _SPEC_SETS.values():
            radio = self.query_one(set_id, RadioSet)
            pressed = radio.pressed_button
            if pressed is None or pressed.disabled:
                enabled = [b for b in radio.query(RadioButton) if not b.disabled]
                if enabled:
                    enabled[0].value = True
        self.query_one("#spec-note", Static).update("Unavailable: " + " ".join(notes)
                                                    if notes else "")
        self._defaults = self._choices()

    @on(RadioSet.Changed, "#key-type")
    def _type_changed(self) -> None:
        self._show_type(self.key_type)
        self.query_one("#key_spec-error", FieldError).clear()

    def _show_type(self, key_type: KeyType) -> None:
        self.set_class(key_type is KeyType.EC, "-ec")
        self.set_class(key_type is KeyType.EDDSA, "-ed")
        self.query_one("#padding-na", Static).update(
            "Not used with EdDSA keys." if key_type is KeyType.EDDSA else
            "Not used with ECDSA keys.")

    @on(Input.Changed, "#label")
    def _label_changed(self) -> None:
        self.query_one("#label-error", FieldError).clear()

    # -- values ----------------------------------------------------------------------------------
    @property
    def key_type(self) -> KeyType:
        """RSA, EC or EdDSA, as chosen."""
        pressed = self.query_one("#key-type", RadioSet).pressed_button
        return _KEY_TYPES.get(pressed.id or "", KeyType.RSA) if pressed else KeyType.RSA

    @property
    def key_spec(self) -> str | None:
        """The chosen spec name (``RSA2048``, ``P-256`` ...) for the chosen type."""
        pressed = self.query_one(_SPEC_SETS[self.key_type], RadioSet).pressed_button
        return pressed.name if pressed is not None else None

    @property
    def hash_name(self) -> str:
        """``SHA256`` / ``SHA384`` / ``SHA512`` as chosen (not used with EdDSA keys)."""
        pressed = self.query_one("#hash", RadioSet).pressed_button
        return pressed.name if pressed is not None and pressed.name else HashAlg.SHA256.value

    @property
    def pss(self) -> bool:
        """Whether RSASSA-PSS was chosen (always False for EC and EdDSA keys)."""
        if self.key_type is not KeyType.RSA:
            return False
        pressed = self.query_one("#padding", RadioSet).pressed_button
        return _PADDINGS.get(pressed.id or "", False) if pressed else False

    @property
    def profile(self) -> str | None:
        """The profile chosen explicitly; None leaves it to the groups' policies."""
        value = self.query_one("#profile", Select).value
        return value if isinstance(value, str) and value != FROM_GROUPS else None

    def choose_profile(self, name: str | None) -> None:
        """Choose the profile ``name`` (None: from the groups' policies)."""
        self._wanted_profile = name
        select: Select[str] = self.query_one("#profile", Select)
        if name is None or name in self._profile_names:
            select.value = name or FROM_GROUPS

    @property
    def always_authenticate(self) -> bool:
        """Whether the key must need a login before every signature."""
        return self.query_one("#always-auth", StateCheckbox).value

    @property
    def label(self) -> str:
        """The key label as typed (stripped)."""
        return self.query_one("#label", Input).value.strip()

    def wants_label(self) -> bool:
        """True when the label is empty or still the one the wizard suggested."""
        return not self.label or self.label == self._auto_label

    def set_suggested_label(self, label: str) -> None:
        """Fill the label with the wizard's suggestion (the user may still change it)."""
        self._auto_label = label
        field = self.query_one("#label", Input)
        if field.value != label:
            field.value = label
            field.cursor_position = len(label)

    def prefill(self, params: GenerateParams) -> None:
        """Start from ``params`` (a renewal's source): key type and spec, hash, padding,
        always authenticate. The label stays empty: a renewal gets a new one."""
        spec = KEY_SPECS.get(params.key_spec)
        if spec is not None:
            button = {KeyType.RSA: "#type-rsa", KeyType.EC: "#type-ec",
                      KeyType.EDDSA: "#type-ed"}[spec.key_type]
            self.query_one(button, RadioButton).value = True
            self._show_type(spec.key_type)
            self.query_one(f"#spec-{spec.name}", RadioButton).value = True
        if params.hash:
            self.query_one(f"#hash-{params.hash}", RadioButton).value = True
        self.query_one("#pad-pss" if params.pss else "#pad-pkcs1", RadioButton).value = True
        self.query_one("#always-auth", StateCheckbox).value = params.always_authenticate
        self._defaults = self._choices()

    # -- WizardStep ------------------------------------------------------------------------------
    async def check(self) -> Errors:
        """The spec must be one the token can make; a typed label must be free."""
        errors: Errors = {}
        if self.key_spec is None:
            errors["key_spec"] = "Choose a key specification."
        else:
            button = self.query_one(f"#spec-{self.key_spec}", RadioButton)
            if button.disabled:
                errors["key_spec"] = str(button.tooltip or "The token cannot make this key.")
        if self.label:
            problem = await self.service.label_problem(self.label)
            if problem:
                errors["label"] = problem
        return errors

    def is_dirty(self) -> bool:
        """A typed label or any choice away from the defaults."""
        typed = bool(self.label) and self.label != self._auto_label
        return typed or self._choices() != self._defaults

    def contribute(self, params: GenerateParams) -> None:
        """Key spec, hash, padding and label."""
        params.key_spec = self.key_spec or ""
        params.hash = None if self.key_type is KeyType.EDDSA else self.hash_name
        params.pss = self.pss
        params.label = self.label or None
        params.always_authenticate = self.always_authenticate
        params.profile = self.profile

    def summary(self) -> list[tuple[str, str]]:
        """Token, key, hash, padding, label."""
        spec = KEY_SPECS.get(self.key_spec or "")
        eddsa = self.key_type is KeyType.EDDSA
        padding = {KeyType.EC: "ECDSA (no padding)", KeyType.EDDSA: "EdDSA (no padding)"}.get(
            self.key_type, "PSS" if self.pss else "PKCS#1 v1.5")
        return [
            ("Token", self.service.token.label if self.service.token is not None else "-"),
            ("Key", (spec.display if spec else "-") + (
                ", PIN before every signature" if self.always_authenticate else "")),
            ("Hash", "none (EdDSA hashes as it signs)" if eddsa
             else HashAlg(self.hash_name).display),
            ("Padding", padding),
            ("Key label", self.label or "-"),
            ("Profile", self.profile or FROM_GROUPS_TEXT),
        ]
