"""Vendor stand-ins: the real :class:`~tui_csr.hsm.token.Pkcs11Token` on a real SoftHSM session,
under python-pkcs11 objects wrapped so that they refuse exactly what a vendor documents (see
FIELD-NOTES "Vendor facts"). Everything else (templates, key generation, signing, the error
mapping, AsyncToken, the service) is the real code path meeting those refusals.
"""
