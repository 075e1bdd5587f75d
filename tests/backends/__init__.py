"""Real PKCS#11 back ends besides SoftHSM, started and stopped by the test suite itself.

- :mod:`tests.backends.tpm2`: tpm2-pkcs11 over swtpm + tpm2-abrmd on a private D-Bus bus.
- :mod:`tests.backends.p11kit`: SoftHSM forwarded by ``p11-kit server`` over a unix socket,
  used through ``p11-kit-client.so`` (how an HSM on another host is reached over ``ssh -L``).
- :mod:`tests.backends.fixtures`: the pytest fixtures (one shared token per back end per
  session, and tokens of their own for tests that kill a daemon).
"""
