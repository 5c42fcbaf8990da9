"""Which kernel, and which notebook, started a process: what Lab shows as an ask's origin."""

from __future__ import annotations

from typing import Any

from ..core.procfs import parent_pid

_MAX_DEPTH = 64


def _kernel_pids(serverapp: Any) -> dict[int, str]:
    """pid of each running kernel's process (local provisioners only) -> kernel id."""
    found: dict[int, str] = {}
    manager = serverapp.kernel_manager
    for kernel_id in manager.list_kernel_ids():
        kernel = manager.get_kernel(kernel_id)
        pid = getattr(getattr(kernel, "provisioner", None), "pid", None)
        if isinstance(pid, int):
            found[pid] = kernel_id
    return found


async def origin_of(serverapp: Any, pid: int) -> dict[str, Any]:
    """``{"kernel_id", "notebook"}`` of the kernel whose process tree holds ``pid``, or ``{}``."""
    kernels = _kernel_pids(serverapp)
    current: int | None = pid
    for _ in range(_MAX_DEPTH):
        if current is None or current <= 1:
            return {}
        if current in kernels:
            break
        current = parent_pid(current)
    else:
        return {}
    assert current is not None
    kernel_id = kernels[current]
    origin: dict[str, Any] = {"kernel_id": kernel_id}
    for session in await serverapp.session_manager.list_sessions():
        if (session.get("kernel") or {}).get("id") == kernel_id:
            origin["notebook"] = session.get("path")
            break
    return origin
