"""The environment an ssh child gets: only what ssh needs, nothing of the server's.

A master lives on after the Jupyter server (ControlPersist), and its ``/proc/<pid>/environ``
keeps whatever it was started with: ``JUPYTER_TOKEN``, cloud credentials, anything. So ssh
is given a short list, not the server's whole environment. ``SSH_ASKPASS*`` and ``DISPLAY``
are never passed: the engine answers ssh's questions on the pty itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

# What OpenSSH reads (its config may name ${VAR}s too; those are the person's own settings,
# so the usual locations of keys, agents and Kerberos tickets are kept).
PASSED = frozenset(
    {
        "HOME",
        "USER",
        "LOGNAME",
        "PATH",
        "SHELL",  # runs a ProxyCommand from the person's ~/.ssh/config
        "SSH_AUTH_SOCK",
        "KRB5CCNAME",
        "KRB5_CONFIG",
        "TMPDIR",
        "TZ",
        "XDG_RUNTIME_DIR",
    }
)


def ssh_environment(source: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables of ``source`` (default: ours) an ssh child may see, in the C locale."""
    source = os.environ if source is None else source
    env = {key: value for key, value in source.items() if key in PASSED}
    env.update({"LC_ALL": "C", "LANG": "C", "TERM": "dumb"})
    return env
