"""Running an IR read from a file in a worker process with hard limits.

An IR read from a file (``torch_ir.load_ir``, ``torch-ir verify FILE``) is untrusted: besides the software
checks every run has (the allow-list, the memory budget, loop limits: ``torch_ir.runtime.sandbox``), it
runs in a child process (``torch_ir.runtime.worker_server``) that

- may use at most ``memory`` bytes of address space (``RLIMIT_AS``) and ``cpu_seconds`` of CPU time
  (``RLIMIT_CPU``), and writes no core file;
- inherits no file descriptor but its socket and standard streams, and works in its own temporary folder;
- gets the caller's weights read-only, in a sealed memory file it maps (no op can write them: a write is a
  crash), and the inputs and results as tensors over the socket (``torch_ir.runtime.wire``: plain data and
  raw bytes, never pickle).

A crash (a segfault), a limit hit or a hang (no answer within ``timeout`` seconds) is an
``InterpreterError`` that names the limit; the caller's process and tensors are untouched. Limits come from
``isolation(...)`` (what the command line sets), else ``TORCH_IR_WORKER_MEMORY`` (bytes),
``TORCH_IR_WORKER_CPU_SECONDS`` and ``TORCH_IR_WORKER_TIMEOUT``, else the defaults.

``Executor.for_ir(ir)`` says where an IR runs: in the worker when it was read from a file, in this process
when it was built here (``extract_ir`` then ``verify``), unless ``isolate=`` (or ``isolation(isolate=...)``)
says otherwise. ``Executor.interpreter(...)`` gives an ``Interpreter`` or a ``RemoteInterpreter`` with the
same methods (``run_flat``, ``iter_values``, ``weights``, ``set_weights``, ``assign``, ``open`` ...).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from torch_ir import errors
from torch_ir.errors import InterpreterError, RunLimitError, TorchIRError
from torch_ir.ir.graph import Graph, Node
from torch_ir.ir.module import Module
from torch_ir.runtime import wire
from torch_ir.runtime.coverage import record_regions, recording_regions
from torch_ir.runtime.interpreter import CallStructure, Interpreter, checked_inputs
from torch_ir.runtime.limits import format_bytes
from torch_ir.runtime.sandbox import ExecutionPolicy, default_memory_budget

DEFAULT_CPU_SECONDS = 3600
"""CPU seconds a worker may use in all, by default (``TORCH_IR_WORKER_CPU_SECONDS``)."""
DEFAULT_TIMEOUT = 3600.0
"""Seconds the caller waits for one answer of the worker, by default (``TORCH_IR_WORKER_TIMEOUT``)."""
OVERHEAD_BYTES = 4 << 30
"""Address space a worker needs besides its memory budget and the weights it maps: Python, torch and its
threads (measured: about 1 GiB at start; allocator arenas and thread stacks grow with the cores)."""


def _env_number(name: str) -> float | None:
    text = os.environ.get(name, "").strip()
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value > 0 else None


@dataclass(frozen=True)
class WorkerLimits:
    """The hard limits of a worker: address space in bytes (None: the memory budget, the weights and
    ``OVERHEAD_BYTES``), CPU seconds, and seconds to wait for each answer."""

    memory: int | None = None
    cpu_seconds: int = DEFAULT_CPU_SECONDS
    timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def from_env(
        cls, memory: int | None = None, cpu_seconds: int | None = None, timeout: float | None = None
    ) -> WorkerLimits:
        """The limits given, else those of ``TORCH_IR_WORKER_MEMORY``, ``..._CPU_SECONDS``, ``..._TIMEOUT``."""
        env_memory = _env_number("TORCH_IR_WORKER_MEMORY")
        env_cpu = _env_number("TORCH_IR_WORKER_CPU_SECONDS")
        env_timeout = _env_number("TORCH_IR_WORKER_TIMEOUT")
        return cls(
            memory=memory if memory is not None else (int(env_memory) if env_memory else None),
            cpu_seconds=cpu_seconds if cpu_seconds is not None else int(env_cpu or DEFAULT_CPU_SECONDS),
            timeout=timeout if timeout is not None else float(env_timeout or DEFAULT_TIMEOUT),
        )


@dataclass(frozen=True)
class Isolation:
    """How IRs run, as the command line or the caller's Python chose: ``isolate`` (None: a file's IR in a
    worker, an IR built here in this process), the worker's ``limits``, the ``memory_budget``, the ops
    allowed beyond the allow-list, and the plugin modules the worker imports (custom ops and kernels)."""

    isolate: bool | None = None
    limits: WorkerLimits = field(default_factory=WorkerLimits.from_env)
    memory_budget: int | None = None
    allow_ops: tuple[str, ...] = ()
    plugins: tuple[str, ...] = ()


_ISOLATION: ContextVar[Isolation | None] = ContextVar("torch_ir_isolation", default=None)


def current_isolation() -> Isolation:
    """The settings in force (``isolation(...)``), else those of the environment."""
    return _ISOLATION.get() or Isolation()


@contextmanager
def isolation(**settings: Any) -> Iterator[Isolation]:
    """Run the ``with`` block's IRs with these settings (fields of ``Isolation``; ``memory``,
    ``cpu_seconds`` and ``timeout`` set the worker's limits)."""
    base = current_isolation()
    limits = base.limits
    picked = {k: settings.pop(k) for k in ("memory", "cpu_seconds", "timeout") if k in settings}
    picked = {k: v for k, v in picked.items() if v is not None}
    if picked:
        limits = replace(limits, **picked)
    token = _ISOLATION.set(replace(base, limits=limits, **settings))
    try:
        yield _ISOLATION.get()  # type: ignore[misc]
    finally:
        _ISOLATION.reset(token)


# ------------------------------------------------------------------ the process


class Worker:
    """One worker process for one module, started on first use, shut down by ``close`` (or when garbage)."""

    def __init__(self, module: Module, settings: Isolation, budget: int, device: torch.device):
        self.module = module
        self.settings = settings
        self.budget = budget
        self.device = device
        self.mapped_bytes = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._folder: str | None = None
        self._handles = 0
        self._provided: dict[str, torch.Tensor] = {}
        self._dead = ""
        self._lock = threading.RLock()
        self._streaming = False
        self._finalizer: Any = None

    @property
    def memory(self) -> int | None:
        """The address-space limit the worker gets (None on accelerators, whose drivers reserve address space)."""
        if self.device.type not in ("cpu", "meta"):
            return None
        explicit = self.settings.limits.memory
        return explicit if explicit is not None else self.budget + self.mapped_bytes + OVERHEAD_BYTES

    def new_handle(self) -> int:
        """A fresh number naming one interpreter the worker holds."""
        self._handles += 1
        return self._handles

    def _start(self) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        folder = tempfile.mkdtemp(prefix="torch-ir-worker-")
        env = dict(os.environ)
        paths = [os.path.abspath(p or os.getcwd()) for p in sys.path if os.path.isdir(p or os.getcwd())]
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        limits = self.settings.limits
        command = [
            sys.executable,
            "-B",
            "-m",
            "torch_ir.runtime.worker_server",
            str(child.fileno()),
            str(self.memory or 0),
            str(int(limits.cpu_seconds)),
        ]
        with open(os.path.join(folder, "worker.log"), "wb") as log:
            process = subprocess.Popen(
                command,
                cwd=folder,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                pass_fds=(child.fileno(),),
                close_fds=True,
                env=env,
                start_new_session=True,
            )
        child.close()
        self._process, self._sock, self._folder = process, parent, folder
        self._finalizer = weakref.finalize(self, _shutdown, process, parent, folder)
        self._receive("starting")
        source = self.module.loaded_from or "<module>"
        from torch_ir.serde import dumps

        document = torch.frombuffer(bytearray(dumps(self.module).encode()), dtype=torch.uint8)
        self.request(
            {
                "op": "load",
                "source": source,
                "plugins": list(self.settings.plugins),
                "allow_ops": list(self.settings.allow_ops),
            },
            tensors=[document],
        )

    def request(
        self,
        header: dict[str, Any],
        values: Any = None,
        *,
        tensors: list[torch.Tensor] | None = None,
        fds: list[int] | None = None,
    ) -> wire.Message:
        """Send one request and return its answer; any failure of the worker is an ``InterpreterError``."""
        with self._lock:
            if self._streaming:
                raise InterpreterError("the worker is busy running node by node: finish that iteration first")
            if self._process is None and not self._dead:
                self._start_once()
            self._send(header, values, tensors, fds)
            return self._receive(str(header.get("op")))

    def _start_once(self) -> None:
        try:
            self._start()
        except InterpreterError:
            raise
        except OSError as exc:
            raise InterpreterError(f"the worker process could not start: {exc}") from None

    def _send(
        self, header: dict[str, Any], values: Any, tensors: list[torch.Tensor] | None, fds: list[int] | None
    ) -> None:
        if self._dead:
            raise InterpreterError(f"the worker process is gone ({self._dead}); run again")
        assert self._sock is not None
        try:
            if tensors:
                pieces = wire.encode_frame(header, tensors)
                first = bytes(pieces[0]) + bytes(pieces[1])
                self._sock.sendall(first)
                for piece in pieces[2:]:
                    self._sock.sendall(piece)
            else:
                wire.send(self._sock, header, values, fds)
        except (TimeoutError, OSError):
            raise self._failed("sending a request") from None

    def _receive(self, what: str) -> wire.Message:
        assert self._sock is not None
        limits = self.settings.limits
        self._sock.settimeout(limits.timeout)
        try:
            message = wire.receive(self._sock, _answer_limit(self.memory))
        except TimeoutError:
            raise self._failed(what, timed_out=True) from None
        except (EOFError, OSError):
            raise self._failed(what) from None
        except wire.WireError as exc:
            self._kill()
            self._dead = str(exc)
            raise InterpreterError(f"the worker sent a malformed answer ({exc}); it was stopped") from None
        error = message.get("error")
        if error is not None:
            kind = message.get("kind")
            cls = getattr(errors, kind, None) if isinstance(kind, str) else None
            if not (isinstance(cls, type) and issubclass(cls, TorchIRError)):
                cls = InterpreterError
            if message.get("limit") == "memory":
                cls = RunLimitError
                error = (
                    f"the worker ran out of memory under its address-space limit of {format_bytes(self.memory or 0)} "
                    f"(TORCH_IR_WORKER_MEMORY, --worker-memory): {error}"
                )
            raise cls(str(error))
        return message

    def _failed(self, what: str, *, timed_out: bool = False) -> InterpreterError:
        limits = self.settings.limits
        if timed_out:
            self._kill()
            reason = (
                f"the worker did not answer within {limits.timeout:g} s while {what} (its time limit: "
                "TORCH_IR_WORKER_TIMEOUT, --worker-timeout); it was stopped"
            )
        else:
            code = self._wait()
            reason = self._exit_reason(code, what)
        self._dead = reason
        tail = self._log_tail()
        return RunLimitError(reason + (f"; its last words: {tail}" if tail else ""))

    def _exit_reason(self, code: int | None, what: str) -> str:
        limits = self.settings.limits
        if code is None:
            self._kill()
            return f"the worker stopped answering while {what}; it was stopped"
        if code >= 0:
            return f"the worker exited with status {code} while {what}"
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else f"signal {-code}"
        if name in ("SIGXCPU", "SIGKILL"):
            return (
                f"the worker hit its CPU time limit of {limits.cpu_seconds} s while {what} "
                "(TORCH_IR_WORKER_CPU_SECONDS, --worker-cpu-seconds)"
            )
        if name in ("SIGSEGV", "SIGBUS"):
            return (
                f"the worker crashed ({name}) while {what}: an op read or wrote memory it does not own (the "
                "weights are mapped read-only: a write into them ends here)"
            )
        if name == "SIGABRT":
            memory = self.memory
            limit = f" of {format_bytes(memory)} (TORCH_IR_WORKER_MEMORY, --worker-memory)" if memory else ""
            return (
                f"the worker aborted ({name}) while {what}, as an allocation past its address-space limit{limit} does"
            )
        return f"the worker was killed by {name} while {what}"

    def _wait(self) -> int | None:
        if self._process is None:
            return None
        try:
            return self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            return None

    def _kill(self) -> None:
        if self._process is not None and self._process.poll() is None:
            try:
                os.killpg(self._process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                self._process.kill()
            self._process.wait()

    def _log_tail(self) -> str:
        if self._folder is None:
            return ""
        try:
            with open(os.path.join(self._folder, "worker.log"), "rb") as f:
                lines = f.read()[-4000:].decode("utf-8", "replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(line.strip() for line in lines[-3:] if line.strip())[:600]

    def provide(self, tensors: Mapping[str, torch.Tensor]) -> None:
        """Map the caller's weights into the worker, read-only (a sealed memory file); each storage once."""
        new = {n: t for n, t in tensors.items() if self._provided.get(n) is not t}
        if not new:
            return
        regions: dict[tuple[int, tuple[int, ...], str], dict[str, Any]] = {}
        chunks: list[torch.Tensor] = []
        offset = 0
        for name, tensor in new.items():
            cpu = tensor.detach().to("cpu")
            key = (cpu.data_ptr(), tuple(cpu.shape), str(cpu.dtype)) if cpu.is_contiguous() else (id(cpu), (), "")
            region = regions.get(key)
            if region is None:
                flat = cpu.contiguous().reshape(-1)
                nbytes = flat.numel() * flat.element_size()
                offset += -offset % wire.ALIGN
                dtype = str(cpu.dtype).removeprefix("torch.")
                region = {"dtype": dtype, "shape": list(cpu.shape), "offset": offset, "nbytes": nbytes, "names": []}
                regions[key] = region
                chunks.append(flat)
                offset += nbytes
            region["names"].append(name)
        if self._process is None:
            self.mapped_bytes += offset
        fd = _sealed_file(list(regions.values()), chunks, offset)
        try:
            self.request({"op": "weights", "size": offset, "tensors": list(regions.values())}, fds=[fd])
        finally:
            os.close(fd)
        self._provided.update(new)

    def close(self) -> None:
        """Stop the worker and remove its folder."""
        with self._lock:
            if self._sock is not None and not self._dead and self._process is not None and self._process.poll() is None:
                try:
                    self._sock.settimeout(5)
                    wire.send(self._sock, {"op": "exit"})
                    self._process.wait(timeout=5)
                except (TimeoutError, OSError, subprocess.TimeoutExpired):
                    pass
            self._dead = self._dead or "closed"
            if self._finalizer is not None:
                self._finalizer()


def _answer_limit(memory: int | None) -> int:
    return max(memory or 0, 1 << 32) * 2


def _sealed_file(regions: list[dict[str, Any]], chunks: list[torch.Tensor], size: int) -> int:
    """A memory file holding the chunks at their offsets, sealed: nobody can write, grow or shrink it."""
    fd = os.memfd_create("torch-ir-weights", os.MFD_ALLOW_SEALING | os.MFD_CLOEXEC)
    try:
        os.ftruncate(fd, size)
        for region, chunk in zip(regions, chunks):
            if region["nbytes"]:
                data = memoryview(chunk.view(torch.uint8).numpy())
                written = 0
                while written < len(data):
                    written += os.pwrite(fd, data[written:], region["offset"] + written)
        seals = fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _shutdown(process: subprocess.Popen[bytes], sock: socket.socket, folder: str) -> None:
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            process.kill()
        process.wait()
    sock.close()
    shutil.rmtree(folder, ignore_errors=True)


# ------------------------------------------------------------------ the interpreter in the worker


def graph_path(module: Module, graph: Graph) -> dict[str, Any]:
    """How the worker finds ``graph`` in its copy of ``module``: a function, the init graph, or a region
    below one (``{"function": "forward", "regions": [["scan", 0]]}``)."""

    def search(owner: Graph, trail: list[list[Any]]) -> list[list[Any]] | None:
        if owner is graph:
            return trail
        for node in owner.nodes:
            for index, region in enumerate(node.regions):
                found = search(region, [*trail, [node.name, index]])
                if found is not None:
                    return found
        return None

    for name, function in module.functions.items():
        found = search(function.graph, [])
        if found is not None:
            return {"function": name, "regions": found}
    init = module.table.init
    if init is not None:
        found = search(init, [])
        if found is not None:
            return {"init": True, "regions": found}
    raise InterpreterError("the graph to run is not part of its module: pass the module itself")


class RemoteWeights(Mapping[str, torch.Tensor]):
    """The weights bound in the worker, by IR name: the caller's own tensors where it gave them, the others
    (derived weights, state after a call) read back on first access."""

    def __init__(self, owner: RemoteInterpreter):
        self.owner = owner

    def __getitem__(self, name: str) -> torch.Tensor:
        known = self.owner._known
        if name not in known:
            if name not in self.owner.graph.weights:
                raise KeyError(name)
            answer = self.owner._request({"op": "fetch", "names": [name]})
            known[name] = self.owner._local(wire.decode_value(answer["value"], answer.tensors)[name])
        return known[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.owner.graph.weights)

    def __len__(self) -> int:
        return len(self.owner.graph.weights)


class RemoteInterpreter(CallStructure):
    """An interpreter whose plan lives in a worker process: the methods of ``Interpreter`` that callers use
    (``run_flat``, ``iter_values``, ``bind``, ``set_weights``, ``assign``, ``weights``, ``kept``, ``open``)."""

    def __init__(
        self,
        worker: Worker,
        graph: Graph,
        *,
        device: torch.device,
        policy: ExecutionPolicy,
        keep: Sequence[str] = (),
        keep_all: bool = False,
    ):
        self.worker = worker
        self.graph = graph
        self.module = worker.module
        self.device = device
        self.policy = policy
        self.keep_names = set(keep)
        self.keep_all = keep_all
        self.kept: dict[str, Any] = {}
        self.run_inputs: list[Any] = []
        """The flat inputs of the last ``run_flat``: what the worker wrote into its copies is copied into them."""
        self.written: set[str] = set()
        """The bound weights the worker reports it wrote into (without a state update) since they were bound."""
        self._known: dict[str, torch.Tensor] = {}
        self._nodes = {node.name: node for node in graph.nodes}
        self._handle = worker.new_handle()
        self._request(
            {
                "op": "open",
                "graph": graph_path(worker.module, graph),
                "device": str(device),
                "policy": {
                    "allow_side_effects": policy.allow_side_effects,
                    "memory_budget": policy.budget,
                    "dry_run": policy.dry_run,
                },
                "keep": sorted(self.keep_names),
                "keep_all": keep_all,
            }
        )

    @property
    def weights(self) -> RemoteWeights:
        """The bound weights by IR name."""
        return RemoteWeights(self)

    def _request(self, header: dict[str, Any], values: Any = None) -> wire.Message:
        return self.worker.request({**header, "handle": self._handle}, values)

    def _local(self, value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return value.to(self.device)
        if isinstance(value, list):
            return [self._local(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self._local(v) for v in value)
        if isinstance(value, dict):
            return {k: self._local(v) for k, v in value.items()}
        return value

    def bind(self, weights: Any, *, strict: bool = True) -> None:
        """Bind weights: resolved and checked here, mapped read-only into the worker, the init graph run there."""
        from torch_ir.runtime.weights import resolve_weights

        resolved = resolve_weights(self.graph, weights, device="cpu", strict=strict)
        self.worker.provide(resolved)
        self._request({"op": "bind", "names": list(resolved), "init": self.graph.init is not None})
        self._known = {name: tensor for name, tensor in resolved.items() if name in self.graph.weights}
        self.written = set()

    def set_weights(self, tensors: Mapping[str, torch.Tensor]) -> None:
        """Bind resolved tensors by IR name (those the worker holds already are not sent again)."""
        missing = [name for name in self.graph.weights if name not in tensors]
        if missing:
            raise errors.WeightError(f"no tensor for weight(s): {', '.join(missing)}")
        self._send_weights(tensors, every=True)

    def assign(self, tensors: Mapping[str, torch.Tensor]) -> None:
        """Replace some bound weights by name (a program's state before a call)."""
        unknown = [name for name in tensors if name not in self.graph.weights]
        if unknown:
            raise InterpreterError(f"cannot assign @{unknown[0]}: the IR has no weight of that name")
        self._send_weights(tensors, every=False)

    def _send_weights(self, tensors: Mapping[str, torch.Tensor], every: bool) -> None:
        changed = {n: t for n, t in tensors.items() if n in self.graph.weights and self._known.get(n) is not t}
        if changed:
            self._request({"op": "assign", "all": every}, changed)
            self._known.update(changed)

    def check_inputs(self, inputs: Sequence[Any]) -> list[Any]:
        """Check count, dtype and shape of the flat inputs here (the worker checks the rest when it runs)."""
        return checked_inputs(self.graph, inputs, torch.device("cpu"))

    def run_flat(self, inputs: Sequence[Any]) -> list[Any]:
        """Run on the flat graph inputs in the worker; state updates are applied as ``Interpreter`` does, and
        what the run wrote into its copies without declaring it shows here too: a written input is copied
        into ``inputs``, a written weight is read back through ``weights`` and named in ``written``."""
        given = self.run_inputs = list(inputs)
        answer = self._request({"op": "run", "coverage": recording_regions()}, given)
        value = wire.decode_value(answer["value"], answer.tensors)
        record_regions(value.get("regions", {}))  # what the worker ran counts in this process's recorder
        for name, tensor in value["updates"].items():
            self._known[name] = self._local(tensor)
        for name in value.get("written", ()):  # read back on access: the caller sees what the worker holds
            self.written.add(name)
            self._known.pop(name, None)
        for index, tensor in value["inputs"].items():
            destination = given[int(index)]
            if isinstance(destination, torch.Tensor):
                with torch.no_grad():
                    destination.copy_(tensor)
        self.kept = self._local(value["kept"])
        return list(self._local(value["outputs"]))

    def iter_values(self, inputs: Sequence[Any]) -> Iterator[tuple[Node, list[Any]]]:
        """Run node by node in the worker, yielding ``(node, results)`` as they arrive (no other request may
        go to the worker until the iteration ends)."""
        worker = self.worker
        worker.request({"op": "ping"})  # started, alive, and nothing else in flight
        worker._send({"op": "iter", "handle": self._handle}, list(inputs), None, None)
        worker._streaming = True
        done = False
        try:
            while True:
                message = worker._receive("running node by node")
                node_name = message.get("node")
                if node_name is None:
                    done = True
                    return
                values = self._local(wire.decode_value(message.get("value"), message.tensors))
                yield self._nodes[node_name], list(values)
        except InterpreterError:
            done = True
            raise
        finally:
            while not done:  # the caller stopped early: read the rest, so the next request finds its answer
                try:
                    done = worker._receive("running node by node").get("node") is None
                except InterpreterError:
                    done = True
            worker._streaming = False

    def writers(self, inputs: Sequence[Any], weights: Sequence[str], positions: Sequence[int]) -> list[Node | None]:
        """Replay node by node in the worker on ``inputs``: for each weight of ``weights`` (by IR name), then
        each input of ``positions``, the first node after which it no longer holds what it held before; None
        where no node changed it (``torch_ir.runtime.isolation.find_writers``, run where the copies are)."""
        header = {"op": "writers", "weights": list(weights), "inputs": [int(i) for i in positions]}
        answer = self._request(header, list(inputs))
        found = wire.decode_value(answer["value"], answer.tensors)
        labels = [*weights, *(str(i) for i in positions)]
        return [self._nodes.get(found[label]) if label in found else None for label in labels]

    def open(self, graph: Graph, *, keep: Sequence[str] = (), keep_all: bool = False) -> RemoteInterpreter:
        """An interpreter of another graph of the module in the same worker, with the same weights bound."""
        other = RemoteInterpreter(
            self.worker,
            graph,
            device=self.device,
            policy=replace(self.policy, dry_run=False),
            keep=keep,
            keep_all=keep_all,
        )
        if graph.weights:
            other._request({"op": "share", "source": self._handle})
            other._known = {name: t for name, t in self._known.items() if name in graph.weights}
        return other

    def close(self) -> None:
        """Forget this interpreter in the worker."""
        self._request({"op": "close"})


# ------------------------------------------------------------------ where an IR runs


def owner_module(graph: Graph) -> Module | None:
    """The module whose function ``graph`` is, if it can be found."""
    owner = getattr(graph.table, "owner", None)
    module = owner() if owner is not None else None
    return module if isinstance(module, Module) and module.table is graph.table else None


class Executor:
    """Where the IRs of one module run: in this process (``isolated`` False) or in one worker process."""

    def __init__(self, module: Module | None, isolated: bool, settings: Isolation, device: torch.device, budget: int):
        self.module = module
        self.isolated = isolated
        self.settings = settings
        self.device = device
        self.budget = budget
        self.worker = Worker(module, settings, budget, device) if isolated and module is not None else None

    @classmethod
    def for_ir(
        cls,
        ir: Module | Graph,
        *,
        device: str | torch.device = "cpu",
        isolate: bool | None = None,
        memory_budget: int | None = None,
    ) -> Executor:
        """The executor for ``ir``: a worker when it was read from a file (or ``isolate``), else this process."""
        settings = current_isolation()
        graph = ir.graph if isinstance(ir, Module) else ir
        module = ir if isinstance(ir, Module) else owner_module(graph)
        choice = isolate if isolate is not None else settings.isolate
        if choice is None:
            choice = graph.table.loaded_from is not None
        if choice and module is None:
            raise InterpreterError(
                "an IR that runs in a worker must be given as its module (the graph alone has no file form)"
            )
        budget = memory_budget if memory_budget is not None else settings.memory_budget
        return cls(module, bool(choice), settings, torch.device(device), budget or default_memory_budget())

    def interpreter(
        self,
        graph: Graph | None = None,
        weights: Any = None,
        *,
        strict: bool = True,
        keep: Sequence[str] = (),
        keep_all: bool = False,
        allow_side_effects: bool = False,
        dry_run: bool | None = None,
    ) -> Interpreter | RemoteInterpreter:
        """An interpreter of ``graph`` (default: the module's one entry) with ``weights`` bound."""
        if graph is None:
            if self.module is None:
                raise InterpreterError("give the graph to run")
            graph = self.module.graph
        untrusted = self.isolated or graph.table.loaded_from is not None
        if self.worker is None:
            return Interpreter(
                graph,
                weights,
                device=self.device,
                keep=keep,
                keep_all=keep_all,
                strict=strict,
                allow_side_effects=allow_side_effects,
                memory_budget=self.budget,
                dry_run=dry_run,
                untrusted=untrusted,
                allow_ops=self.settings.allow_ops,
                module=self.module,
            )
        policy = ExecutionPolicy(
            allow_side_effects=allow_side_effects,
            memory_budget=self.budget,
            dry_run=True if dry_run is None else dry_run,
            untrusted=True,
        )
        remote = RemoteInterpreter(self.worker, graph, device=self.device, policy=policy, keep=keep, keep_all=keep_all)
        if weights is not None:
            remote.bind(weights, strict=strict)
        return remote

    def close(self) -> None:
        """Stop the worker, if there is one."""
        if self.worker is not None:
            self.worker.close()


def open_interpreter(
    ir: Module | Graph,
    weights: Any = None,
    *,
    device: str | torch.device = "cpu",
    isolate: bool | None = None,
    **options: Any,
) -> Interpreter | RemoteInterpreter:
    """An interpreter of ``ir`` with ``weights`` bound, running where ``Executor.for_ir`` says (in a worker
    for an IR read from a file). ``options`` are those of ``Executor.interpreter``."""
    executor = Executor.for_ir(ir, device=device, isolate=isolate)
    graph = ir.graph if isinstance(ir, Module) else ir
    return executor.interpreter(graph, weights, **options)


__all__ = [
    "DEFAULT_CPU_SECONDS",
    "DEFAULT_TIMEOUT",
    "Executor",
    "Isolation",
    "OVERHEAD_BYTES",
    "RemoteInterpreter",
    "RemoteWeights",
    "Worker",
    "WorkerLimits",
    "current_isolation",
    "graph_path",
    "isolation",
    "open_interpreter",
    "owner_module",
]
