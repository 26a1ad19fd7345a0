"""`python -m runner.cluster workers=N -- <runner overrides>`: multi-worker training on this machine.

Starts N `python -m runner trainer.strategy=multi_worker <overrides>` processes, each with the
TF_CONFIG that tf.distribute reads (a worker list on loopback ports, and its own index), so the
same code path as a real cluster runs on a laptop and in the tests. Output is prefixed with the
worker's index. When a worker fails, the others get GRACE_SECONDS to fail on their own (their
collectives notice a lost peer), then are stopped; SIGTERM and Ctrl-C are passed on to every worker.
The exit status is the first failing worker's, else 0.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

USAGE = "usage: python -m runner.cluster workers=N -- [runner overrides]"
GRACE_SECONDS = 20.0
POLL_SECONDS = 0.2


def main(argv: list[str]) -> int:
    try:
        workers, overrides = _parse(argv)
    except ValueError as error:
        print(f"error: {error}\n{USAGE}", file=sys.stderr)
        return 2
    addresses = [f"127.0.0.1:{port}" for port in _free_ports(workers)]
    processes = [_start(index, addresses, overrides) for index in range(workers)]
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signal_number, lambda number, frame: _send(processes, number))
    return _wait(processes)


def _parse(argv: list[str]) -> tuple[int, list[str]]:
    options, overrides = (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])
    values = dict(option.split("=", 1) for option in options if "=" in option)
    unknown = [option for option in options if option.split("=", 1)[0] != "workers"]
    if unknown:
        raise ValueError(f"{unknown[0]}: unknown option; runner overrides go after --")
    workers = values.get("workers", "")
    if not workers.isdigit() or int(workers) < 1:
        raise ValueError(f"workers={workers}: expected a positive int")
    return int(workers), overrides


def _free_ports(count: int) -> list[int]:
    """Ports the kernel hands out now; held together, so no two are the same."""
    sockets = [socket.socket() for _ in range(count)]
    for held in sockets:
        held.bind(("127.0.0.1", 0))
    ports = [held.getsockname()[1] for held in sockets]
    for held in sockets:
        held.close()
    return ports


def _start(index: int, addresses: list[str], overrides: list[str]) -> subprocess.Popen:
    tf_config = {"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}}
    process = subprocess.Popen(
        [sys.executable, "-m", "runner", "trainer.strategy=multi_worker", *overrides],
        env={**os.environ, "TF_CONFIG": json.dumps(tf_config), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    threading.Thread(target=_relay, args=(process, f"[worker {index}] "), daemon=True).start()
    return process


def _relay(process: subprocess.Popen, prefix: str) -> None:
    for line in process.stdout:
        sys.stdout.write(prefix + line)
        sys.stdout.flush()


def _wait(processes: list[subprocess.Popen]) -> int:
    failed_at, status = None, 0
    while any(process.poll() is None for process in processes):
        failures = [process.returncode for process in processes if process.returncode not in (None, 0)]
        if failures and failed_at is None:
            failed_at, status = time.monotonic(), failures[0]
            print(f"runner.cluster: a worker exited with status {status}; waiting {GRACE_SECONDS:.0f} s "
                  "for the others to stop", file=sys.stderr)
        if failed_at is not None and time.monotonic() - failed_at > GRACE_SECONDS:
            _send(processes, signal.SIGKILL)
        time.sleep(POLL_SECONDS)
    return status or next((process.returncode for process in processes if process.returncode), 0)


def _send(processes: list[subprocess.Popen], signal_number: int) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal_number)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
