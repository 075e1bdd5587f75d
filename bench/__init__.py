"""The benchmark suite of issue 7 (``make bench``, not part of ``make test``): tui-csr against
bare python-pkcs11 and the peer tools, on throwaway SoftHSM tokens. See ``bench/__main__.py``."""
