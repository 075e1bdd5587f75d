"""Step 2, Distinguished Name: the DN as one string and as fields, kept in sync both ways.

OU and DC may hold several values, one per line, outermost first (the order ``openssl`` prints,
and the order of repeated ``--ou`` flags): ``IT`` then ``PKI`` is ``OU=PKI,OU=IT`` in the DN
string, each value its own RDN.

Every other attribute type the string accepts (title, UID, serialNumber, emailAddress,
organizationIdentifier, businessCategory, the EV jurisdiction fields, a dotted OID ...) is a row
under "Other attributes": its type from a list, its value, ctrl+o adds a row and ctrl+t deletes
the focused one. A DN with a multi-valued RDN (``CN=a+UID=b``) has no fields form: the step
says so under the DN string, which keeps it as typed.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Select, Static, TextArea

from tui_csr.core.dn import (
    ATTRIBUTE_TYPES,
    CANONICAL_ORDER,
    MAX_LENGTH,
    OID_TYPE_MAX,
    REPEATABLE,
    DistinguishedName,
    canonical_type,
    parse_dn,
)
from tui_csr.errors import InputError
from tui_csr.service import GenerateParams
from tui_csr.ui.wizard.common import Errors, FieldError, FieldRow, WizardStep
from tui_csr.ui.wizard.country import CountryPicker, country_label

#: The text fields in the order shown (C is the country picker, after them; DC last).
TEXT_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("CN", "Common Name", "e.g. www.example.com"),
    ("O", "Organization", "e.g. Example Corp"),
    ("OU", "Department", "one per line, outermost first"),
    ("L", "City", "locality"),
    ("ST", "State", "state or province"),
)
#: Fields holding several values, one per line (TextArea instead of Input).
MULTI_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("DC", "Domain parts", "one per line: com, then example"),
)
_DN_FIELDS = tuple(attr for attr in CANONICAL_ORDER)
_CLASSIC = frozenset(_DN_FIELDS)
_MULTI = frozenset(REPEATABLE)
_TITLES = {attr: title for attr, title, _ in (*TEXT_FIELDS, *MULTI_FIELDS)} | {"C": "Country"}

#: The types an "Other attributes" row offers: every accepted type beyond the fields above.
EXTRA_TYPES: tuple[str, ...] = tuple(t[0] for t in ATTRIBUTE_TYPES if t[0] not in _CLASSIC)
#: The row type choice "a dotted OID" (the OID is typed in the row's own OID field).
OID_CHOICE = "(dotted OID)"
#: Shown under the DN string when it has a multi-valued RDN.
MULTI_VALUED_NOTE = ("The fields cannot show a multi-valued RDN ('+'): edit this DN here, "
                     "in the string.")

FieldValue = str | list[str]


def lines_of(text: str) -> list[str]:
    """The non-blank lines of a multi-value field, stripped."""
    return [line.strip() for line in text.split("\n") if line.strip()]


def _multi(attr: str, placeholder: str) -> TextArea:
    """The one-value-per-line field of ``attr``."""
    return TextArea(id=f"f-{attr.lower()}", compact=True, soft_wrap=False,
                    show_line_numbers=False, highlight_cursor_line=False,
                    placeholder=placeholder, tab_behavior="focus")


def _type_hint(attr: str) -> str:
    """The value field's placeholder for ``attr``: its string type's limits."""
    if not attr:
        return "value (choose its type first)"
    limit = MAX_LENGTH.get(attr, OID_TYPE_MAX)
    if attr == "jurisdictionC":
        return "country code, e.g. DE"
    if attr == "emailAddress":
        return f"ASCII, max {limit}"
    if attr == "serialNumber":
        return f"A-Z a-z 0-9 '()+,-./:=? (max {limit})"
    return f"max {limit}"


class AttrRow(Vertical):
    """One "Other attributes" row: the type (a list, or a dotted OID typed in), the value and
    the error line under them."""

    DEFAULT_CSS = """
    AttrRow { height: auto; }
    AttrRow > .attr-line { height: auto; }
    AttrRow .attr-type { width: 24; }
    AttrRow.-oid .attr-type { width: 14; }
    AttrRow .attr-oid { width: 22; margin-right: 1; display: none; }
    AttrRow.-oid .attr-oid { display: block; }
    AttrRow .attr-value { width: 1fr; }
    AttrRow > FieldError { padding-left: 2; }
    """

    def __init__(self, key: int, attr: str | None = None, value: str = "") -> None:
        super().__init__(id=f"x{key}", classes="attr-row")
        self.key = key
        oid = bool(attr) and attr not in EXTRA_TYPES
        self._start: tuple[str | None, str, str] = (
            OID_CHOICE if oid else attr, (attr or "") if oid else "", value)
        #: (choice, OID, value) as last shown from the DN string or taken into the DN: a
        #: Changed event that finds the row so (its own mount, a fill) is no edit.
        self.synced: tuple[str | None, str, str] = self._start
        self.set_class(oid, "-oid")

    def compose(self) -> ComposeResult:
        """Type, OID (for a dotted OID), value; the error line."""
        choice, oid, value = self._start
        options = [(t, t) for t in EXTRA_TYPES] + [("dotted OID…", OID_CHOICE)]
        with Horizontal(classes="attr-line"):
            yield Select(options, prompt="attribute type", value=choice or Select.NULL,
                         id=f"x{self.key}-type", classes="attr-type", compact=True)
            yield Input(oid, id=f"x{self.key}-oid", classes="attr-oid", compact=True,
                        placeholder="OID, e.g. 1.2.3.4", disabled=choice != OID_CHOICE)
            yield Input(value, id=f"x{self.key}-value", classes="attr-value", compact=True,
                        placeholder=_type_hint(choice or ""))
        yield FieldError(id=f"x{self.key}-error")

    @property
    def error_key(self) -> str:
        """The key of this row's errors (``x3``)."""
        return f"x{self.key}"

    @property
    def choice(self) -> str | None:
        """The chosen type (a name of :data:`EXTRA_TYPES` or :data:`OID_CHOICE`), if any."""
        value = self.query_one(".attr-type", Select).value
        return value if isinstance(value, str) else None

    @property
    def raw_type(self) -> str:
        """The type as chosen: the name, the OID as typed, or '' when none."""
        choice = self.choice
        if choice == OID_CHOICE:
            return self.query_one(".attr-oid", Input).value.strip()
        return choice or ""

    @property
    def value(self) -> str:
        """The value as typed."""
        return self.query_one(".attr-value", Input).value

    @property
    def state(self) -> tuple[str | None, str, str]:
        """(choice, OID as typed, value as typed)."""
        return (self.choice, self.query_one(".attr-oid", Input).value, self.value)

    def edited(self) -> bool:
        """Whether the row changed since :attr:`synced` (and note that it now is)."""
        state = self.state
        changed, self.synced = state != self.synced, state
        return changed

    @property
    def blank(self) -> bool:
        """Nothing typed as the value (the row is left out of the DN)."""
        return not self.value.strip()

    def type_chosen(self) -> None:
        """Show the OID field for a dotted OID, and the value's limits."""
        oid = self.choice == OID_CHOICE
        self.set_class(oid, "-oid")
        self.query_one(".attr-oid", Input).disabled = not oid
        self.query_one(".attr-value", Input).placeholder = _type_hint(self.choice or "")

    def set_pair(self, attr: str, value: str) -> None:
        """Show ``attr`` (a short name or an OID) and ``value``."""
        oid = attr not in EXTRA_TYPES
        self.query_one(".attr-type", Select).value = OID_CHOICE if oid else attr
        self.query_one(".attr-oid", Input).value = attr if oid else ""
        self.query_one(".attr-value", Input).value = value
        self.type_chosen()
        self.synced = self.state


def row_problem(raw_type: str, choice: str | None, value: str,
                taken: dict[str, str]) -> tuple[str | None, str | None]:
    """``(attribute, problem)`` of one row: its canonical type (None when it has none) and the
    one sentence saying what is wrong with it (None when nothing is). ``taken`` maps the
    types of the rows above to their names, for "only once"."""
    if not value.strip():
        return None, None  # a blank row is left out
    if choice is None:
        return None, "Choose the attribute type of this value."
    if choice == OID_CHOICE and not raw_type:
        return None, "Type the attribute type's dotted OID, e.g. 1.3.6.1.4.1.311.60.2.1.3."
    try:
        attr = canonical_type(raw_type)
    except InputError:
        return None, (f"'{raw_type}' is not a dotted OID; write numbers separated by dots, "
                      "e.g. 2.5.4.97.")
    if attr in _CLASSIC:
        return None, f"{raw_type} is {attr}; enter it in the {_TITLES[attr]} field above."
    if attr in taken:
        return None, f"{attr} is in another row already; it may appear only once in a DN."
    try:
        DistinguishedName.from_pairs([("CN", "x"), (attr, value)])
    except InputError as exc:
        return attr, exc.message
    return attr, None


class DistinguishedNameStep(WizardStep):
    """The subject: type ``CN=...,O=...,C=..`` or fill the fields; each side updates the other."""

    TITLE = "Distinguished Name"
    LIST_TITLE = "Subject DN"
    FIELDS = frozenset({"dn", *_DN_FIELDS})

    BINDINGS = [
        Binding("ctrl+o", "add_row", "Add attribute", tooltip="Add an 'Other attributes' row",
                id="wizard.dn_add"),
        Binding("ctrl+t", "delete_row", "Delete attribute",
                tooltip="Delete the focused 'Other attributes' row", id="wizard.dn_delete"),
    ]

    DEFAULT_CSS = """
    DistinguishedNameStep #dn-row > .field-label { color: $text; text-style: bold; }
    DistinguishedNameStep FieldRow > TextArea {
        width: 1fr; height: auto; max-height: 4; padding: 0; background: $boost;
    }
    DistinguishedNameStep FieldRow > TextArea:focus { background-tint: $primary 30%; }
    DistinguishedNameStep #dn-fields { height: auto; }
    DistinguishedNameStep #dn-fields:disabled { opacity: 60%; }
    DistinguishedNameStep #dn-note { color: $text-warning; display: none; padding-left: 18; }
    DistinguishedNameStep #dn-note.-shown { display: block; }
    DistinguishedNameStep #extra-heading { margin-top: 1; color: $text-muted; height: auto; }
    DistinguishedNameStep #extra-rows { height: auto; }
    DistinguishedNameStep #add-attr { margin-left: 0; }
    DistinguishedNameStep Select.attr-type:focus > SelectCurrent { background-tint: $primary 30%; }
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        #: The last DN that parsed or was built from the fields (None until there is one).
        self.dn: DistinguishedName | None = None
        self._next_key = 0

    def _new_row(self, attr: str | None = None, value: str = "") -> AttrRow:
        self._next_key += 1
        return AttrRow(self._next_key, attr, value)

    def compose(self) -> ComposeResult:
        """The DN string, then the six fields and the other attributes."""
        yield from self.heading()
        yield FieldRow("Subject DN", Input(id="dn", compact=True,
                                           placeholder="CN=www.example.com,O=Example,C=US"),
                       id="dn-row")
        yield FieldError(id="dn-error")
        yield Static(MULTI_VALUED_NOTE, id="dn-note", markup=False)
        yield Static("…or fill in the fields below: both stay in sync.",
                     classes="hint", id="dn-hint", markup=False)
        yield Static(classes="gap")
        with Vertical(id="dn-fields"):
            for attr, title, placeholder in TEXT_FIELDS:
                limit = MAX_LENGTH[attr]
                required = "required, " if attr == "CN" else ""
                hint = f"{placeholder} ({required}max {limit})"
                widget = (_multi(attr, hint) if attr in _MULTI
                          else Input(id=f"f-{attr.lower()}", compact=True, placeholder=hint))
                yield FieldRow(f"{title} ({attr})", widget)
                yield FieldError(id=f"{attr.lower()}-error")
            yield FieldRow("Country (C)", CountryPicker(id="country", input_id="f-c"))
            yield FieldError(id="c-error")
            for attr, title, placeholder in MULTI_FIELDS:
                yield FieldRow(f"{title} ({attr})", _multi(attr, placeholder))
                yield FieldError(id=f"{attr.lower()}-error")
            yield Static("Other attributes (ctrl+o: add a row, ctrl+t: delete)",
                         id="extra-heading", markup=False)
            with Vertical(id="extra-rows"):
                yield self._new_row()
            yield Button("Add attribute", id="add-attr", compact=True,
                         tooltip="Add an 'Other attributes' row (ctrl+o)")

    # -- reading the widgets ---------------------------------------------------------------------
    @property
    def dn_text(self) -> str:
        """The DN string as typed."""
        return self.query_one("#dn", Input).value

    @property
    def rows(self) -> list[AttrRow]:
        """The "Other attributes" rows, top to bottom."""
        return list(self.query_one("#extra-rows", Vertical).query_children(AttrRow))

    @property
    def multi_valued(self) -> bool:
        """Whether the DN string holds a multi-valued RDN (the fields are then off)."""
        return self.dn is not None and bool(self.dn.plus)

    def field_values(self) -> dict[str, FieldValue]:
        """``{attr: value}`` of the fields (C is the picked code, '' when none); OU and DC
        give their lines as a list, outermost first; then each non-blank other attribute
        (its type as chosen or typed)."""
        values: dict[str, FieldValue] = {}
        for attr in (*(a for a, _, _ in TEXT_FIELDS), *(a for a, _, _ in MULTI_FIELDS)):
            if attr in _MULTI:
                values[attr] = lines_of(self.query_one(f"#f-{attr.lower()}", TextArea).text)
            else:
                values[attr] = self.query_one(f"#f-{attr.lower()}", Input).value
        values["C"] = self.query_one(CountryPicker).code or ""
        for row in self.rows:
            if not row.blank and row.raw_type:
                values.setdefault(row.raw_type, row.value)
        return values

    def row_problems(self) -> dict[AttrRow, str]:
        """What is wrong with each row that has a problem."""
        problems: dict[AttrRow, str] = {}
        taken: dict[str, str] = {}
        for row in self.rows:
            attr, problem = row_problem(row.raw_type, row.choice, row.value, taken)
            if problem:
                problems[row] = problem
            elif attr is not None:
                taken[attr] = attr
        return problems

    # -- DN string -> fields ---------------------------------------------------------------------
    @on(Input.Changed, "#dn")
    def _dn_typed(self, event: Input.Changed) -> None:
        error = self.query_one("#dn-error", FieldError)
        if not event.value.strip():
            error.clear()
            self.dn = None
            self._fill_fields(None)
            return
        try:
            dn = parse_dn(event.value)
        except InputError as exc:
            error.show(exc.message)  # the fields keep what they had
            return
        error.clear()
        self.dn = dn
        self._fill_fields(dn)
        self.post_message(self.Fixed(self))

    def _fill_fields(self, dn: DistinguishedName | None) -> None:
        """Show ``dn`` in the fields (empty them for None); a multi-valued DN turns them off."""
        multi = dn is not None and bool(dn.plus)
        self.query_one("#dn-note", Static).set_class(multi, "-shown")
        self.query_one("#dn-hint", Static).display = not multi
        self.refresh_bindings()  # the row keys go while the fields are off
        self.query_one("#dn-fields", Vertical).disabled = multi
        fields = {} if dn is None or multi else dn.multi_fields
        # Changes made here must not echo back as if the user had typed them.
        with self.prevent(Input.Changed, TextArea.Changed, CountryPicker.Changed, Select.Changed):
            for attr in (*(a for a, _, _ in TEXT_FIELDS), *(a for a, _, _ in MULTI_FIELDS)):
                values = fields.get(attr, [])
                if attr in _MULTI:
                    area = self.query_one(f"#f-{attr.lower()}", TextArea)
                    if lines_of(area.text) != values:
                        area.load_text("\n".join(values))
                else:
                    widget = self.query_one(f"#f-{attr.lower()}", Input)
                    value = values[0] if values else ""
                    if widget.value != value:
                        widget.value = value
                self.query_one(f"#{attr.lower()}-error", FieldError).clear()
            codes = fields.get("C", [])
            self.query_one(CountryPicker).set_code(codes[0] if codes else None)
            self.query_one("#c-error", FieldError).clear()
            self._fill_rows([(a, v[0]) for a, v in fields.items() if a not in _CLASSIC])

    def _fill_rows(self, pairs: list[tuple[str, str]]) -> None:
        """Make the rows show ``pairs`` (one row each; one empty row when there are none)."""
        rows = self.rows
        shown = [(canonical_or_raw(r.raw_type), r.value.strip()) for r in rows if not r.blank]
        if shown == pairs and rows:
            for row in rows:
                row.query_one(FieldError).clear()
            return
        if len(rows) == len(pairs) and pairs:
            for row, (attr, value) in zip(rows, pairs, strict=True):
                row.set_pair(attr, value)
                row.query_one(FieldError).clear()
            return
        container = self.query_one("#extra-rows", Vertical)
        container.remove_children()
        container.mount(*([self._new_row(a, v) for a, v in pairs] or [self._new_row()]))

    # -- fields -> DN string ---------------------------------------------------------------------
    @on(Input.Changed, "#f-cn, #f-o, #f-ou, #f-l, #f-st")
    def _field_typed(self, event: Input.Changed) -> None:
        if event.input.id is not None:
            self._fields_changed(event.input.id[2:])

    @on(TextArea.Changed, "#f-ou, #f-dc")
    def _lines_typed(self, event: TextArea.Changed) -> None:
        if event.text_area.id is not None:
            self._fields_changed(event.text_area.id[2:])

    @on(CountryPicker.Changed)
    def _country_picked(self, event: CountryPicker.Changed) -> None:
        self._fields_changed("c")

    @on(Input.Changed, ".attr-value, .attr-oid")
    def _row_typed(self, event: Input.Changed) -> None:
        event.stop()
        row = next((a for a in event.input.ancestors if isinstance(a, AttrRow)), None)
        if row is not None and row.edited():
            self._fields_changed(row.error_key)

    @on(Select.Changed, ".attr-type")
    def _row_type_chosen(self, event: Select.Changed) -> None:
        event.stop()
        row = next((a for a in event.select.ancestors if isinstance(a, AttrRow)), None)
        if row is not None and row.edited():
            row.type_chosen()
            self._fields_changed(row.error_key)

    def _fields_changed(self, origin: str) -> None:
        """A field changed (``origin``: the key of its error line, ``cn``, ``x3`` ...): the DN
        string follows when the fields make a valid DN; otherwise the message goes under the
        field it is about and the string keeps its last good value."""
        if self.multi_valued:
            return  # the fields are off; the string is the DN
        problems = self.row_problems()
        for row in self.rows:
            row.query_one(FieldError).show(problems.get(row))
        if problems:
            return
        try:
            dn = self._merged()
        except InputError as exc:
            # Show it under the field it is about (CN required, too long ...).
            target = exc.field.lower() if exc.field in _DN_FIELDS else origin
            if target != origin and exc.field == "CN" and self.dn is None:
                self.query_one(f"#{origin}-error", FieldError).clear()  # typing another
                # field first: "CN is required" would only nag
            else:
                self.query_one(f"#{target}-error", FieldError).show(exc.message)
            return
        for other in _DN_FIELDS:
            self.query_one(f"#{other.lower()}-error", FieldError).clear()
        if dn == self.dn:
            return  # e.g. a row mounting: nothing the string does not say already
        self.dn = dn
        with self.prevent(Input.Changed):
            self.query_one("#dn", Input).value = dn.to_rfc4514()
        self.query_one("#dn-error", FieldError).clear()
        # The string now parses: the step's ✗ in the step list no longer applies.
        self.post_message(self.Fixed(self))

    def _merged(self) -> DistinguishedName:
        """The DN the fields give: the last DN with each changed attribute replaced where it
        stood (the string's order kept), or, without one, in canonical order. InputError."""
        mapping = self.field_values()
        fresh = DistinguishedName.from_mapping(mapping)  # validates; raises the real error
        if self.dn is None:
            return fresh
        want = fresh.multi_fields
        dn = self.dn
        try:
            for attr in dn.multi_fields:
                if attr not in want:
                    dn = dn.with_values(attr, [])
            for attr, values in want.items():
                if dn.multi_fields.get(attr) != values:
                    dn = dn.with_values(attr, values)
        except InputError:
            return fresh  # an order the edits cannot reach one by one (e.g. CN replaced)
        return dn if dn.multi_fields == want else fresh

    # -- rows ------------------------------------------------------------------------------------
    async def action_add_row(self) -> None:
        """Add an empty "Other attributes" row and focus its type."""
        if self.multi_valued:
            return
        row = self._new_row()
        await self.query_one("#extra-rows", Vertical).mount(row)
        row.query_one(".attr-type", Select).focus()

    async def action_delete_row(self) -> None:
        """Delete the row holding the focus (the last row is emptied instead)."""
        focused = self.app.focused
        row = next((a for a in (focused.ancestors if focused else []) if isinstance(a, AttrRow)),
                   None)
        if row is None or self.multi_valued:
            return
        rows = self.rows
        index = rows.index(row)
        if len(rows) == 1:
            with self.prevent(Select.Changed, Input.Changed):
                row.query_one(".attr-type", Select).clear()
                row.query_one(".attr-oid", Input).value = ""
                row.query_one(".attr-value", Input).value = ""
                row.type_chosen()
                row.synced = row.state
            row.query_one(".attr-type", Select).focus()
        else:
            await row.remove()
            rest = self.rows
            rest[min(index, len(rest) - 1)].query_one(".attr-type", Select).focus()
        self._fields_changed(self.rows[0].error_key)

    @on(Button.Pressed, "#add-attr")
    async def _add_pressed(self) -> None:
        await self.action_add_row()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Row keys only while the fields are on; delete only inside a row."""
        if action in ("add_row", "delete_row") and self.multi_valued:
            return False
        if action == "delete_row":
            focused = self.app.focused
            return any(isinstance(a, AttrRow) for a in (focused.ancestors if focused else []))
        return True

    # -- WizardStep ------------------------------------------------------------------------------
    def current_dn(self) -> DistinguishedName | None:
        """The subject the step would give now, or None while it has errors."""
        try:
            return self._resolve()
        except InputError:
            return None

    def _resolve(self) -> DistinguishedName:
        """The subject, from the fields (checked against the DN string); raises InputError."""
        if self.dn_text.strip():
            parsed = parse_dn(self.dn_text)  # a string that does not parse is an error of its own
            if parsed.plus:
                return parsed  # no fields form: the string is the DN
        picker = self.query_one(CountryPicker)
        if picker.unresolved:
            raise InputError(f"'{picker.text.strip()}' is not a country in the list; type part "
                             "of its name and pick it with Enter.", field="C")
        if self.row_problems():
            raise InputError("An other attribute has a problem.", field="dn")
        return DistinguishedName.from_mapping(self.field_values())

    async def check(self) -> Errors:
        """The DN string must parse and the fields must make a valid subject (CN required)."""
        errors: Errors = {}
        if self.dn_text.strip():
            try:
                if parse_dn(self.dn_text).plus:
                    return {}  # the fields are off; the string is the subject
            except InputError as exc:
                errors["dn"] = exc.message
        picker = self.query_one(CountryPicker)
        if picker.unresolved:
            errors["C"] = (f"'{picker.text.strip()}' is not a country in the list; type part of "
                           "its name and pick it with Enter.")
        for row, problem in self.row_problems().items():
            errors[row.error_key] = problem
        if not errors:
            try:
                DistinguishedName.from_mapping(self.field_values())
            except InputError as exc:
                errors[exc.field if exc.field in _DN_FIELDS else "dn"] = exc.message
        return errors

    def show_error(self, field: str, message: str) -> None:
        """Errors about the whole DN go under the DN string; the others under their field."""
        known = field in self.FIELDS or (field.startswith("x") and field[1:].isdigit())
        super().show_error(field if known else "dn", message)

    def is_dirty(self) -> bool:
        """Anything typed in the DN string or a field."""
        return bool(self.dn_text.strip()
                    or any(v if isinstance(v, list) else v.strip()
                           for v in self.field_values().values())
                    or self.query_one(CountryPicker).text.strip())

    def subject(self) -> DistinguishedName | None:
        """The subject to request: in the order the user wrote the DN string, when it matches
        the fields (it does unless a field holds an error); None while the step has errors."""
        dn = self.current_dn()
        if dn is not None and self.dn is not None and self.dn.multi_fields == dn.multi_fields:
            return self.dn
        return dn

    def prefill(self, dn: str) -> None:
        """Start from the subject ``dn`` (a renewal's source): the fields follow the string."""
        self.query_one("#dn", Input).value = dn

    def contribute(self, params: GenerateParams) -> None:
        """The subject as one RFC 4514 string."""
        dn = self.subject()
        params.dn = dn.to_rfc4514() if dn is not None else self.dn_text
        params.fields = {}

    def summary(self) -> list[tuple[str, str]]:
        """The subject DN, and the country's name."""
        dn = self.subject()
        rows = [("Subject DN", dn.to_rfc4514() if dn else "-")]
        if dn is not None and dn.get("C"):
            rows.append(("Country", country_label(dn.get("C") or "")))
        return rows


def canonical_or_raw(attr: str) -> str:
    """The short name of ``attr`` when it is an accepted type, else ``attr`` as typed."""
    try:
        return canonical_type(attr)
    except InputError:
        return attr
