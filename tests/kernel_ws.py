"""Talk to a kernel the Jupyter server started, over the server's kernel websocket (as Lab does)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from jupyter_client.jsonutil import json_default
from jupyter_client.session import Session


@dataclass
class Execution:
    msg_id: str
    stdout: str = ""
    stderr: str = ""
    error: str | None = None
    outputs: list[dict[str, Any]] = field(default_factory=list)
    reply: dict[str, Any] | None = None
    idle: bool = False

    @property
    def done(self) -> bool:
        return self.idle and self.reply is not None


class KernelWS:
    """A minimal frontend: execute, answer stdin requests, send comm messages, collect comms."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.session = Session(username="test")
        self.executions: dict[str, Execution] = {}
        self.comm_opens: dict[str, dict[str, Any]] = {}  # comm_id -> data of comm_open
        self.comm_updates: list[tuple[str, dict[str, Any]]] = []
        self.stdin_requests: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._reader = asyncio.ensure_future(self._read())

    async def close(self) -> None:
        self._reader.cancel()
        self.ws.close()

    def _send(self, channel: str, msg_type: str, content: dict[str, Any]) -> str:
        msg = self.session.msg(msg_type, content)
        msg["channel"] = channel
        self.ws.write_message(json.dumps(msg, default=json_default))
        return str(msg["header"]["msg_id"])

    async def _read(self) -> None:
        while True:
            raw = await self.ws.read_message()
            if raw is None:
                return
            msg = json.loads(raw)
            kind = msg["msg_type"] if "msg_type" in msg else msg["header"]["msg_type"]
            content = msg["content"]
            if kind == "comm_open":
                self.comm_opens[content["comm_id"]] = content.get("data", {})
            elif kind == "comm_msg":
                self.comm_updates.append((content["comm_id"], content.get("data", {})))
            elif kind == "input_request":
                await self.stdin_requests.put(content)
            parent = (msg.get("parent_header") or {}).get("msg_id")
            execution = self.executions.get(parent or "")
            if execution is None:
                continue
            if kind == "stream":
                if content["name"] == "stdout":
                    execution.stdout += content["text"]
                else:
                    execution.stderr += content["text"]
            elif kind in ("execute_result", "display_data"):
                execution.outputs.append(content)
            elif kind == "error":
                execution.error = "\n".join(content.get("traceback", [])) or content["evalue"]
            elif kind == "execute_reply":
                execution.reply = content
            elif kind == "status" and content["execution_state"] == "idle":
                execution.idle = True

    def start(self, code: str, allow_stdin: bool = False) -> Execution:
        content = {
            "code": code,
            "silent": False,
            "store_history": False,
            "user_expressions": {},
            "allow_stdin": allow_stdin,
            "stop_on_error": True,
        }
        msg_id = self._send("shell", "execute_request", content)
        execution = Execution(msg_id)
        self.executions[msg_id] = execution
        return execution

    async def finish(self, execution: Execution, timeout: float = 60) -> Execution:
        async def wait() -> None:
            while not execution.done:
                await asyncio.sleep(0.02)

        await asyncio.wait_for(wait(), timeout)
        return execution

    async def run(self, code: str, timeout: float = 60, allow_errors: bool = False) -> Execution:
        execution = await self.finish(self.start(code), timeout)
        if execution.error and not allow_errors:
            raise AssertionError(f"kernel error:\n{execution.error}")
        return execution

    def answer_stdin(self, value: str) -> None:
        self._send("stdin", "input_reply", {"value": value})

    def comm_msg(self, comm_id: str, data: dict[str, Any]) -> None:
        self._send("shell", "comm_msg", {"comm_id": comm_id, "data": data})

    def widgets(self, model: str) -> dict[str, dict[str, Any]]:
        """comm_id -> state of every widget of this model that the kernel opened."""
        return {
            comm_id: data.get("state", {})
            for comm_id, data in self.comm_opens.items()
            if data.get("state", {}).get("_model_name") == model
        }
