"""Model Explorer on localhost with the torch-ir adapter and overlays: what ``torch-ir view`` runs.

``start_view`` starts Model Explorer's own server (``model_explorer.server.start``) in a background thread,
bound to 127.0.0.1, with the IR file as its model (opened through the adapter, ``main.py``) and each overlay
as node data, waits until it answers, and returns the URL that opens the IR with its overlays. It never
opens a browser and never reaches the network (Model Explorer's check for a newer release is turned off).
Needs the ``[viz]`` extra.
"""

from __future__ import annotations

import importlib
import socket
import threading
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from torch_ir.backends.model_explorer import ADAPTER_ID, EXTENSION_MODULE
from torch_ir.backends.model_explorer.bundle import to_json
from torch_ir.backends.model_explorer.overlays import COST_OVERLAYS, VERIFY_OVERLAYS
from torch_ir.backends.model_explorer.schema import ModelNodeData, node_data_to_dict
from torch_ir.errors import TorchIRError

HOST = "127.0.0.1"
"""Where the server listens: this machine only."""

START_TIMEOUT = 120.0
"""Seconds to wait for the server to answer before giving up."""

HEALTH_ANSWER = "model_explorer_ok"
"""What Model Explorer's ``/check_health`` answers once it serves."""


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
"""Requests to the local server go straight to it, whatever proxy the environment names."""


class ViewError(TorchIRError):
    """Model Explorer is not installed, the port is taken, or the server did not start."""


@dataclass
class ViewServer:
    """A running Model Explorer: its base address, the URL that opens the IR, and the thread it serves from."""

    address: str
    url: str
    thread: threading.Thread

    def wait(self) -> None:
        """Block while the server runs (until the process is interrupted)."""
        while self.thread.is_alive():
            self.thread.join(timeout=0.5)


def start_view(
    ir_path: str, overlays: Mapping[str, ModelNodeData], *, port: int | None = None, host: str = HOST
) -> ViewServer:
    """Serve ``ir_path`` through the adapter with ``overlays`` (by file stem) as node data; return once it answers."""
    server, config_class = _model_explorer()
    if port is None:
        port = free_port(host)
    elif not 0 < port < 65536:
        raise ViewError(f"--port {port}: expected a port number from 1 to 65535")
    elif not port_is_free(host, port):
        raise ViewError(f"port {port} on {host} is in use: pick another with --port, or leave it out")
    config = config_class()
    config.add_model_from_path(ir_path, adapterId=ADAPTER_ID)
    names = {**COST_OVERLAYS, **VERIFY_OVERLAYS}
    for stem, data in overlays.items():
        config.add_node_data(names.get(stem, stem), to_json(node_data_to_dict(data)))
    thread = threading.Thread(
        target=server.start,
        kwargs={
            "host": host,
            "port": port,
            "config": config,
            "no_open_in_browser": True,
            "extensions": [EXTENSION_MODULE],
            "skip_health_check": True,  # _wait_until_serving polls, without Model Explorer's busy loop
        },
        name="model-explorer",
        daemon=True,
    )
    thread.start()
    address = f"http://{host}:{port}"
    _wait_until_serving(address, thread)
    return ViewServer(address, f"{address}/?data={config.to_url_param_value()}", thread)


def _model_explorer() -> tuple[Any, Any]:
    """Model Explorer's server module and config class, with its release check (a request to the internet) off."""
    try:
        server = importlib.import_module("model_explorer.server")
        config = importlib.import_module("model_explorer.config").ModelExplorerConfig
    except ImportError as exc:
        raise ViewError(
            f"torch-ir view needs Model Explorer ({exc}): pip install 'torch-ir[viz]' (ai-edge-model-explorer)"
        ) from None
    if hasattr(server, "_check_new_version"):
        server._check_new_version = _no_release_check  # type: ignore[attr-defined]
    return server, config


def _no_release_check(print_msg: bool = True) -> dict[str, str]:
    """What Model Explorer's release check answers when it finds nothing newer."""
    return {"version": "", "runningVersion": "", "releaseUrl": "", "desktopAppUrl": ""}


def free_port(host: str = HOST) -> int:
    """A TCP port on ``host`` that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(host: str, port: int) -> bool:
    """Whether ``port`` on ``host`` can be bound now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _wait_until_serving(address: str, thread: threading.Thread, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not thread.is_alive():
            raise ViewError(f"Model Explorer stopped before it served {address} (see its messages above)")
        try:
            with _DIRECT.open(f"{address}/check_health", timeout=2) as answer:
                if answer.read().decode() == HEALTH_ANSWER:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise ViewError(f"Model Explorer did not answer at {address} within {timeout:.0f} s")


__all__ = ["HOST", "START_TIMEOUT", "ViewError", "ViewServer", "free_port", "port_is_free", "start_view"]
