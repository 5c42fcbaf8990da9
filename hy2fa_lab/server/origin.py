"""Which kernel, and which notebook, started a process: what Lab shows as an ask's origin.
Where the system tells nothing of processes (``core/processes.py``), the origin is unknown
(``{}``)."""

from __future__ import annotations

from typing import Any

from ..core.processes import ancestors


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
    kernel_id = next(
        (kernels[process] for process in [pid, *ancestors(pid)] if process in kernels), None
    )
    if kernel_id is None:
        return {}
    origin: dict[str, Any] = {"kernel_id": kernel_id}
    for session in await serverapp.session_manager.list_sessions():
        if (session.get("kernel") or {}).get("id") == kernel_id:
            origin["notebook"] = session.get("path")
            break
    return origin
