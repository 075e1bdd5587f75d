"""The Generate CSR wizard's steps and the widgets they share (the screen is
:class:`tui_csr.ui.screens.wizard.GenerateWizard`)."""

from tui_csr.ui.wizard.common import Errors, FieldError, FieldRow, WizardStep
from tui_csr.ui.wizard.country import CountryPicker
from tui_csr.ui.wizard.dn_step import DistinguishedNameStep
from tui_csr.ui.wizard.groups_step import GroupsStep
from tui_csr.ui.wizard.review_step import ReviewStep
from tui_csr.ui.wizard.san_step import SAN_UNSUPPORTED, SanRow, SanStep
from tui_csr.ui.wizard.step_list import StepList, StepState
from tui_csr.ui.wizard.token_step import CryptoTokenStep

__all__ = [
    "SAN_UNSUPPORTED",
    "CountryPicker",
    "CryptoTokenStep",
    "DistinguishedNameStep",
    "Errors",
    "FieldError",
    "FieldRow",
    "GroupsStep",
    "ReviewStep",
    "SanRow",
    "SanStep",
    "StepList",
    "StepState",
    "WizardStep",
]
