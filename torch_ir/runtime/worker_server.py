"""The worker process: runs IRs read from files for torch-ir, under hard limits, and answers over one socket.

Started by ``torch_ir.runtime.worker`` as ``python -m torch_ir.runtime.worker_server FD MEMORY CPU``. Before
it imports torch it takes its limits (``RLIMIT_AS`` of MEMORY bytes unless 0, ``RLIMIT_CPU`` of CPU
seconds, no core files), closes every file descriptor but its standard streams and the socket FD, and
works in the temporary folder it was started in. Then it serves requests, one at a time:

- ``load``: the module, as the JSON text of its file (read by the same pure-data reader), the plugin
  modules the caller named (imported: they come from the command line, never from the file), and the ops
  the caller allows;
- ``weights``: the caller's weights in a sealed memory file (passed as a descriptor), mapped read-only:
  no op can write them, and a write is a crash the caller reports;
- ``open``, ``bind``, ``assign``, ``share``: an interpreter per graph (a function, a region, by path),
  with the weights bound (its init graph runs here);
- ``run``, ``iter``, ``fetch``: run on inputs, node by node, or read bound weights back (a run also names
  the weights and inputs it wrote into without a state update, and counts the regions it ran when the
  caller records coverage);
- ``writers``: replay node by node and name the first node after which each watched weight or input changed;
- ``exit``.

Every error is answered as its ``TorchIRError`` class and message; anything else (a bug, an allocation
that fails) as an ``InterpreterError``.
"""

from __future__ import annotations

import contextlib
import os
import resource
import sys
from typing import Any

_PAGE = 4096


def _out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc``, or an exception it was raised from, is an allocation that failed."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        text = str(seen)
        if isinstance(seen, MemoryError) or "can't allocate memory" in text or "out of memory" in text.lower():
            return True
        seen = seen.__cause__
    return False


def _take_limits(memory: int, cpu_seconds: int, keep_fd: int) -> None:
    """The worker's own limits, taken before anything from the caller arrives."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if cpu_seconds > 0:
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))
    if memory > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2 and fd != keep_fd:
            try:
                os.close(fd)
            except OSError:  # the descriptor of the listing itself, already closed
                pass


def main(argv: list[str]) -> int:
    """Take the limits, then answer requests on the socket ``argv[0]`` until told to exit."""
    fd, memory, cpu_seconds = (int(a) for a in argv[:3])
    _take_limits(memory, cpu_seconds, fd)
    import socket

    sock = socket.socket(fileno=fd)
    server = _Server(sock)
    return server.serve()


class _Server:
    """The worker's state: the module, its interpreters by handle, the caller's weights mapped read-only."""

    def __init__(self, sock: Any):
        import torch

        from torch_ir.runtime import wire

        self.torch = torch
        self.wire = wire
        self.sock = sock
        self.module: Any = None
        self.interpreters: dict[int, Any] = {}
        self.weights: dict[str, Any] = {}
        self.maps: list[Any] = []
        self.allow_ops: list[str] = []
        torch.set_grad_enabled(False)

    def serve(self) -> int:
        wire = self.wire
        wire.send(self.sock, {"ready": True, "pid": os.getpid()})
        while True:
            fds: list[int] = []
            try:
                message = wire.receive(self.sock, 1 << 62, fds)
            except EOFError:
                return 0
            op = message.get("op")
            if op == "exit":
                wire.send(self.sock, {"ok": True})
                return 0
            try:
                handler = getattr(self, f"do_{op}", None) if isinstance(op, str) and op.isidentifier() else None
                if handler is None:
                    raise self._error("InterpreterError", f"unknown worker request {op!r}")
                handler(message, fds)
            except Exception as exc:  # every failure is answered; the worker stays up for the next request
                self._answer_error(exc)
            finally:
                for fd in fds:
                    os.close(fd)

    # -- answers

    def _error(self, kind: str, message: str) -> Exception:
        from torch_ir import errors

        cls = getattr(errors, kind, errors.InterpreterError)
        return cls(message)

    def _answer_error(self, exc: BaseException) -> None:
        from torch_ir.errors import TorchIRError

        if _out_of_memory(exc):  # an allocation past RLIMIT_AS, perhaps wrapped by the interpreter
            kind = type(exc).__name__ if isinstance(exc, TorchIRError) else "InterpreterError"
            text = str(exc)[:1000] if isinstance(exc, TorchIRError) else f"{type(exc).__name__}: {str(exc)[:300]}"
            self.wire.send(self.sock, {"error": text, "kind": kind, "limit": "memory"})
            return
        if isinstance(exc, TorchIRError):
            kind, text = type(exc).__name__, str(exc)
        else:
            kind, text = "InterpreterError", f"{type(exc).__name__}: {str(exc)[:1000]}"
        self.wire.send(self.sock, {"error": text, "kind": kind})

    def _ok(self, values: Any = None, **fields: Any) -> None:
        self.wire.send(self.sock, {"ok": True, **fields}, values)

    # -- requests

    def do_load(self, message: Any, fds: list[int]) -> None:
        from torch_ir.passes.registry import load_plugins
        from torch_ir.serde import loads

        load_plugins(list(message.get("plugins") or []))
        self.allow_ops = list(message.get("allow_ops") or [])
        data = message.tensors[0].numpy().tobytes() if message.tensors else b""
        self.module = loads(data, str(message.get("source") or "<worker>"))
        self._ok()

    def do_weights(self, message: Any, fds: list[int]) -> None:
        import mmap
        import warnings

        if not fds:
            raise self._error("InterpreterError", "no weight file came with the request")
        size = int(message["size"])
        mapped = mmap.mmap(fds[0], size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ) if size else None
        if mapped is not None:
            self.maps.append(mapped)
        torch = self.torch
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # read-only memory on purpose: a write is a crash
            for spec in message["tensors"]:
                dtype, shape, offset, nbytes = (
                    self.wire.DTYPES[spec["dtype"]],
                    spec["shape"],
                    spec["offset"],
                    spec["nbytes"],
                )
                if nbytes == 0 or mapped is None:
                    tensor = torch.empty(shape, dtype=dtype)
                else:
                    flat = torch.frombuffer(mapped, dtype=torch.uint8, count=nbytes, offset=offset)
                    tensor = flat.view(dtype).reshape(shape)
                for name in spec["names"]:
                    self.weights[name] = tensor
        self._ok()

    def do_open(self, message: Any, fds: list[int]) -> None:
        from torch_ir.ops.runnable import allowed_op_names
        from torch_ir.runtime.interpreter import Interpreter
        from torch_ir.runtime.sandbox import ExecutionPolicy

        graph = self._graph(message["graph"])
        options = message["policy"]
        policy = ExecutionPolicy(
            allow_side_effects=bool(options["allow_side_effects"]),
            memory_budget=options["memory_budget"],
            dry_run=bool(options["dry_run"]),
            untrusted=True,
            allow_ops=allowed_op_names(self.allow_ops),
        )
        self.interpreters[int(message["handle"])] = Interpreter(
            graph,
            device=message["device"],
            keep=list(message.get("keep") or []),
            keep_all=bool(message.get("keep_all")),
            module=self.module,
            policy=policy,
        )
        self._ok()

    def _graph(self, path: Any) -> Any:
        from torch_ir.ir.graph import Graph

        if path.get("init"):
            graph = self.module.table.init
        else:
            graph = self.module.function(path["function"]).graph
        for node_name, index in path.get("regions", []):
            node = next((n for n in graph.nodes if n.name == node_name), None)
            if node is None or not 0 <= index < len(node.regions):
                raise self._error("InterpreterError", f"no region {index} of node {node_name}")
            graph = node.regions[index]
        assert isinstance(graph, Graph)
        return graph

    def do_bind(self, message: Any, fds: list[int]) -> None:
        from torch_ir.runtime.interpreter import run_init_graph

        interp = self.interpreters[int(message["handle"])]
        resolved = {name: self.weights[name] for name in message["names"]}
        graph = interp.graph
        init = self.module.table.init if message.get("init") else None
        if init is not None:
            resolved.update(run_init_graph(init, resolved, device=interp.device, policy=interp.policy))
        interp.set_weights({name: resolved[name] for name in graph.weights})
        self._ok()

    def do_assign(self, message: Any, fds: list[int]) -> None:
        interp = self.interpreters[int(message["handle"])]
        values = self.wire.decode_value(message["value"], message.tensors)
        tensors = {name: value.to(interp.device) for name, value in values.items()}
        if message.get("all"):
            interp.set_weights({**interp.weights, **tensors})
        else:
            interp.assign(tensors)
        self._ok()

    def do_share(self, message: Any, fds: list[int]) -> None:
        source = self.interpreters[int(message["source"])]
        target = self.interpreters[int(message["handle"])]
        if target._weight_slots:
            target.set_weights({name: source.weights[name] for name in target._weight_slots})
        self._ok()

    def do_run(self, message: Any, fds: list[int]) -> None:
        interp = self.interpreters[int(message["handle"])]
        inputs = [_to(v, interp.device) for v in self.wire.decode_value(message["value"], message.tensors)]
        torch = self.torch
        given = [v.clone() if isinstance(v, torch.Tensor) else None for v in inputs]
        from torch_ir.runtime.coverage import RegionCoverage

        coverage = RegionCoverage()
        with coverage.recording() if message.get("coverage") else contextlib.nullcontext():
            outputs = interp.run_flat(inputs)
        graph = interp.graph
        updates = {u.target: interp.weights[u.target] for u in graph.state_updates if u.kind != "input"}
        written = {str(index): inputs[index] for index, _ in interp._input_updates}
        held = interp.run_inputs  # the inputs, or the copies the interpreter made of those the IR may write
        for index, before in enumerate(given):  # inputs the run wrote without a state update: sent back too
            if before is not None and str(index) not in written and not _same(held[index], before):
                written[str(index)] = held[index]
        weights = [  # weights whose copy here no longer holds what the caller gave (writes it did not declare)
            name
            for name, tensor in interp.weights.items()
            if name in self.weights
            and tensor is not self.weights[name]
            and not graph.is_state_target(name)
            and not _same(tensor, self.weights[name])
        ]
        regions = dict(coverage.counts)
        self._ok(
            {
                "outputs": outputs,
                "updates": updates,
                "inputs": written,
                "kept": interp.kept,
                "written": weights,
                "regions": regions,
            }
        )

    def do_iter(self, message: Any, fds: list[int]) -> None:
        interp = self.interpreters[int(message["handle"])]
        inputs = [_to(v, interp.device) for v in self.wire.decode_value(message["value"], message.tensors)]
        for node, values in interp.iter_values(inputs):
            self.wire.send(self.sock, {"node": node.name}, values)
        self._ok()

    def do_writers(self, message: Any, fds: list[int]) -> None:
        """Run node by node; the first node after which each watched weight (by IR name, against what the
        caller gave) and each watched input (by position, against its value before the run) changed."""
        interp = self.interpreters[int(message["handle"])]
        inputs = [_to(v, interp.device) for v in self.wire.decode_value(message["value"], message.tensors)]
        weights = [name for name in message["weights"] if name in self.weights]
        before = {int(i): inputs[int(i)].clone() for i in message["inputs"]}
        found: dict[str, str] = {}
        total = len(weights) + len(before)
        for node, _ in interp.iter_values(inputs):
            for name in weights:
                if name not in found and not _same(interp.weights[name], self.weights[name]):
                    found[name] = node.name
            for index, value in before.items():  # the input as the run holds it (its copy, where it made one)
                if str(index) not in found and not _same(interp.run_inputs[index], value):
                    found[str(index)] = node.name
            if len(found) == total:
                break
        self._ok(found)

    def do_fetch(self, message: Any, fds: list[int]) -> None:
        interp = self.interpreters[int(message["handle"])]
        self._ok({name: interp.weights[name] for name in message["names"]})

    def do_ping(self, message: Any, fds: list[int]) -> None:
        self._ok()

    def do_close(self, message: Any, fds: list[int]) -> None:
        self.interpreters.pop(int(message["handle"]), None)
        self._ok()


def _same(a: Any, b: Any) -> bool:
    """Whether tensor ``a`` holds ``b``'s values (NaN where ``b`` has NaN)."""
    from torch_ir.runtime.isolation import unchanged

    return unchanged(a, b)


def _to(value: Any, device: Any) -> Any:
    import torch

    return value.to(device) if isinstance(value, torch.Tensor) else value


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
