"""The embedded demo cluster: a small SSH login node on loopback that asks for one-time codes.

``hy2fa_lab.demo.sshserver`` holds the asyncssh server with keyboard-interactive prompt scripts
(Sigma2, Duo, NERSC, TACC and plain TOTP), used by ``hy2fa demo`` and by the test suite.
"""
