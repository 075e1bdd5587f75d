"""Step 2, Distinguished Name: the DN as one string and as fields, kept in sync both ways.

OU and DC may hold several values, one per line, outermost first (the order ``openssl`` prints,
and the order of repeated ``--ou`` flags): ``IT`` then ``PKI`` is ``OU=PKI,OU=IT`` in the DN
string, each value its own RDN.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.widgets import Input, Static, TextArea

from tui_csr.core.dn import (
    CANONICAL_ORDER,
    MAX_LENGTH,
    REPEATABLE,
    DistinguishedName,
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
_MULTI = frozenset(REPEATABLE)

FieldValue = str | list[str]


def lines_of(text: str) -> list[str]:
    """The non-blank lines of a multi-value field, stripped."""
    return [line.strip() for line in text.split("\n") if line.strip()]


def _multi(attr: str, placeholder: str) -> TextArea:
    """The one-value-per-line field of ``attr``."""
    return TextArea(id=f"f-{attr.lower()}", compact=True, soft_wrap=False,
                    show_line_numbers=False, highlight_cursor_line=False,
                    placeholder=placeholder, tab_behavior="focus")


class DistinguishedNameStep(WizardStep):
    """The subject: type ``CN=...,O=...,C=..`` or fill the fields; each side updates the other."""

    TITLE = "Distinguished Name"
    LIST_TITLE = "Subject DN"
    FIELDS = frozenset({"dn", *_DN_FIELDS})

    DEFAULT_CSS = """
    DistinguishedNameStep #dn-row > .field-label { color: $text; text-style: bold; }
    DistinguishedNameStep FieldRow > TextArea {
        width: 1fr; height: auto; max-height: 4; padding: 0; background: $boost;
    }
    DistinguishedNameStep FieldRow > TextArea:focus { background-tint: $primary 30%; }
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        #: The last DN that parsed or was built from the fields (None until there is one).
        self.dn: DistinguishedName | None = None

    def compose(self) -> ComposeResult:
        """The DN string, then the six fields."""
        yield from self.heading()
        yield FieldRow("Subject DN", Input(id="dn", compact=True,
                                           placeholder="CN=www.example.com,O=Example,C=US"),
                       id="dn-row")
        yield FieldError(id="dn-error")
        yield Static("…or fill in the fields below: both stay in sync.",
                     classes="hint", markup=False)
        yield Static(classes="gap")
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

    # -- reading the widgets ---------------------------------------------------------------------
    @property
    def dn_text(self) -> str:
        """The DN string as typed."""
        return self.query_one("#dn", Input).value

    def field_values(self) -> dict[str, FieldValue]:
        """``{attr: value}`` of the fields (C is the picked code, '' when none); OU and DC
        give their lines as a list, outermost first."""
        values: dict[str, FieldValue] = {}
        for attr in (*(a for a, _, _ in TEXT_FIELDS), *(a for a, _, _ in MULTI_FIELDS)):
            if attr in _MULTI:
                values[attr] = lines_of(self.query_one(f"#f-{attr.lower()}", TextArea).text)
            else:
                values[attr] = self.query_one(f"#f-{attr.lower()}", Input).value
        values["C"] = self.query_one(CountryPicker).code or ""
        return values

    # -- DN string -> fields ---------------------------------------------------------------------
    @on(Input.Changed, "#dn")
    def _dn_typed(self, event: Input.Changed) -> None:
        error = self.query_one("#dn-error", FieldError)
        if not event.value.strip():
            error.clear()
            self.dn = None
            self._fill_fields({})
            return
        try:
            dn = parse_dn(event.value)
        except InputError as exc:
            error.show(exc.message)  # the fields keep what they had
            return
        error.clear()
        self.dn = dn
        self._fill_fields(dn.multi_fields)
        self.post_message(self.Fixed(self))

    def _fill_fields(self, fields: dict[str, list[str]]) -> None:
        # Changes made here must not echo back as if the user had typed them.
        with self.prevent(Input.Changed, TextArea.Changed, CountryPicker.Changed):
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

    # -- fields -> DN string ---------------------------------------------------------------------
    @on(Input.Changed, "#f-cn, #f-o, #f-ou, #f-l, #f-st")
    def _field_typed(self, event: Input.Changed) -> None:
        if event.input.id is None:
            return
        self._field_changed(event.input.id[2:].upper(), event.value)

    @on(TextArea.Changed, "#f-ou, #f-dc")
    def _lines_typed(self, event: TextArea.Changed) -> None:
        if event.text_area.id is None:
            return
        self._field_changed(event.text_area.id[2:].upper(), lines_of(event.text_area.text))

    @on(CountryPicker.Changed)
    def _country_picked(self, event: CountryPicker.Changed) -> None:
        self._field_changed("C", event.code or "")

    def _field_changed(self, attr: str, value: FieldValue) -> None:
        error = self.query_one(f"#{attr.lower()}-error", FieldError)
        try:
            if self.dn is not None:
                dn = self.dn.with_values(attr, value if isinstance(value, list) else [value])
            else:
                dn = DistinguishedName.from_mapping(self.field_values())
        except InputError as exc:
            # Show it under the field it is about (CN required, too long ...); the DN string
            # keeps its last good value until the fields make a valid DN again.
            target = exc.field.lower() if exc.field in _DN_FIELDS else attr.lower()
            if target != attr.lower() and exc.field == "CN" and self.dn is None:
                error.clear()  # "CN is required" while typing another field first: no nagging
            else:
                self.query_one(f"#{target}-error", FieldError).show(exc.message)
            return
        for other in _DN_FIELDS:
            self.query_one(f"#{other.lower()}-error", FieldError).clear()
        self.dn = dn
        with self.prevent(Input.Changed):
            self.query_one("#dn", Input).value = dn.to_rfc4514()
        self.query_one("#dn-error", FieldError).clear()
        # The string now parses: the step's ✗ in the step list no longer applies.
        self.post_message(self.Fixed(self))

    # -- WizardStep ------------------------------------------------------------------------------
    def current_dn(self) -> DistinguishedName | None:
        """The subject the step would give now, or None while it has errors."""
        try:
            return self._resolve()
        except InputError:
            return None

    def _resolve(self) -> DistinguishedName:
        """The subject, from the fields (checked against the DN string); raises InputError."""
        picker = self.query_one(CountryPicker)
        if picker.unresolved:
            raise InputError(f"'{picker.text.strip()}' is not a country in the list; type part "
                             "of its name and pick it with Enter.", field="C")
        if self.dn_text.strip():
            parse_dn(self.dn_text)  # a string that does not parse is an error of its own
        return DistinguishedName.from_mapping(self.field_values())

    async def check(self) -> Errors:
        """The DN string must parse and the fields must make a valid subject (CN required)."""
        errors: Errors = {}
        if self.dn_text.strip():
            try:
                parse_dn(self.dn_text)
            except InputError as exc:
                errors["dn"] = exc.message
        picker = self.query_one(CountryPicker)
        if picker.unresolved:
            errors["C"] = (f"'{picker.text.strip()}' is not a country in the list; type part of "
                           "its name and pick it with Enter.")
        if not errors:
            try:
                DistinguishedName.from_mapping(self.field_values())
            except InputError as exc:
                errors[exc.field if exc.field in _DN_FIELDS else "dn"] = exc.message
        return errors

    def show_error(self, field: str, message: str) -> None:
        """Errors about the whole DN go under the DN string; the others under their field."""
        super().show_error(field if field in self.FIELDS else "dn", message)

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
