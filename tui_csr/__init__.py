"""tui-csr: CSRs whose key pair is generated and kept inside an HSM (PKCS#11)."""

__version__ = "0.1.0"
