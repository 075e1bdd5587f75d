"""Step 2, Distinguished Name: the DN as one string and as six fields, kept in sync both ways."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.widgets import Input, Static

from tui_csr.core.dn import CANONICAL_ORDER, MAX_LENGTH, DistinguishedName, parse_dn
from tui_csr.errors import InputError
from tui_csr.service import GenerateParams
from tui_csr.ui.wizard.common import Errors, FieldError, FieldRow, WizardStep
from tui_csr.ui.wizard.country import CountryPicker, country_label

#: The text fields in the order shown (C is the country picker).
TEXT_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("CN", "Common Name", "e.g. www.example.com"),
    ("O", "Organization", "e.g. Example Corp"),
    ("OU", "Department", "organizational unit"),
    ("L", "City", "locality"),
    ("ST", "State", "state or province"),
)
_DN_FIELDS = tuple(attr for attr in CANONICAL_ORDER)


class DistinguishedNameStep(WizardStep):
    """The subject: type ``CN=...,O=...,C=..`` or fill the fields; each side updates the other."""

    TITLE = "Distinguished Name"
    FIELDS = frozenset({"dn", *_DN_FIELDS})

    DEFAULT_CSS = """
    DistinguishedNameStep #dn-row > .field-label { color: $text; text-style: bold; }
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
            yield FieldRow(f"{title} ({attr})",
                           Input(id=f"f-{attr.lower()}", compact=True,
                                 placeholder=f"{placeholder} ({required}max {limit})"))
            yield FieldError(id=f"{attr.lower()}-error")
        yield FieldRow("Country (C)", CountryPicker(id="country", input_id="f-c"))
        yield FieldError(id="c-error")

    # -- reading the widgets ---------------------------------------------------------------------
    @property
    def dn_text(self) -> str:
        """The DN string as typed."""
        return self.query_one("#dn", Input).value

    def field_values(self) -> dict[str, str]:
        """``{attr: value}`` of the six fields (C is the picked code, '' when none)."""
        values = {attr: self.query_one(f"#f-{attr.lower()}", Input).value
                  for attr, _, _ in TEXT_FIELDS}
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
        self._fill_fields(dn.fields)

    def _fill_fields(self, fields: dict[str, str]) -> None:
        # Changes made here must not echo back as if the user had typed them.
        with self.prevent(Input.Changed, CountryPicker.Changed):
            for attr, _, _ in TEXT_FIELDS:
                widget = self.query_one(f"#f-{attr.lower()}", Input)
                value = fields.get(attr, "")
                if widget.value != value:
                    widget.value = value
                self.query_one(f"#{attr.lower()}-error", FieldError).clear()
            self.query_one(CountryPicker).set_code(fields.get("C"))
            self.query_one("#c-error", FieldError).clear()

    # -- fields -> DN string ---------------------------------------------------------------------
    @on(Input.Changed, "#f-cn, #f-o, #f-ou, #f-l, #f-st")
    def _field_typed(self, event: Input.Changed) -> None:
        if event.input.id is None:
            return
        self._field_changed(event.input.id[2:].upper(), event.value)

    @on(CountryPicker.Changed)
    def _country_picked(self, event: CountryPicker.Changed) -> None:
        self._field_changed("C", event.code or "")

    def _field_changed(self, attr: str, value: str) -> None:
        error = self.query_one(f"#{attr.lower()}-error", FieldError)
        try:
            if self.dn is not None:
                dn = self.dn.with_field(attr, value)
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
        return bool(self.dn_text.strip() or any(v.strip() for v in self.field_values().values())
                    or self.query_one(CountryPicker).text.strip())

    def subject(self) -> DistinguishedName | None:
        """The subject to request: in the order the user wrote the DN string, when it matches
        the fields (it does unless a field holds an error); None while the step has errors."""
        dn = self.current_dn()
        if dn is not None and self.dn is not None and self.dn.fields == dn.fields:
            return self.dn
        return dn

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
