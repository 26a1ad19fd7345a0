"""A real single-node SLURM for the tests, in a temporary folder: munged with its own key and socket,
slurmctld and slurmd on free ports, one partition over this machine's CPUs, no accounting and no
cgroups. Starting it needs root (slurmd runs job steps as their user) and Debian's slurm-wlm and
munge (CI installs them, .ci/run); where either is missing, or the daemons do not come up, the
tests that need it skip with the reason."""

import contextlib
import dataclasses
import os
import pathlib
import random
import shutil
import signal
import socket
import subprocess
import time

PARTITION = "debug"
# How long the three daemons may take to come up: about 1.5 s on this 2-core machine, more when it is loaded.
START_SECONDS = 60
BINARIES = ("munged", "slurmctld", "slurmd", "sinfo", "srun", "sbatch", "squeue", "scancel", "scontrol")


class Unavailable(Exception):
    """Why no SLURM could be started here; the tests skip with it."""


@dataclasses.dataclass(frozen=True)
class Cluster:
    root: pathlib.Path
    node: str
    partition: str = PARTITION

    @property
    def environment(self) -> dict[str, str]:
        """Where SLURM's commands (srun, sinfo, and submitit's sbatch and squeue) read this cluster from."""
        return {**os.environ, "SLURM_CONF": str(self.root / "slurm.conf")}


@contextlib.contextmanager
def single_node_slurm(root: pathlib.Path):
    """A running cluster under `root` for the duration of the block; its daemons are killed after."""
    _check_can_start()
    root.mkdir(parents=True, exist_ok=True)
    node = socket.gethostname().split(".")[0]
    daemons: list[subprocess.Popen] = []
    try:
        daemons.append(_start_munge(root))
        _write_config(root, node)
        daemons.append(_start(root, "slurmctld", ["slurmctld", "-D", "-f", str(root / "slurm.conf")]))
        daemons.append(_start(root, "slurmd", ["slurmd", "-D", "-f", str(root / "slurm.conf"), "-N", node]))
        cluster = Cluster(root, node)
        _wait_until_idle(cluster, daemons)
        yield cluster
    finally:
        if len(daemons) == 3:
            _cancel_jobs(Cluster(root, node))
        for daemon in reversed(daemons):
            _stop(daemon)


def _check_can_start() -> None:
    if os.geteuid() != 0:
        raise Unavailable("starting slurmd and munged needs root")
    missing = [name for name in BINARIES if _binary(name) is None]
    if missing:
        raise Unavailable(f"SLURM or munge is not installed ({', '.join(missing)} missing; apt-get install slurm-wlm "
                          "munge)")


def _binary(name: str):
    """The daemons live in /usr/sbin, which a PATH may lack."""
    return shutil.which(name, path=f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin")


def _start_munge(root: pathlib.Path) -> subprocess.Popen:
    key = root / "munge.key"
    key.write_bytes(os.urandom(1024))  # munge's own mungekey writes 1024 random bytes
    key.chmod(0o400)
    return _start(root, "munged", [
        "munged", "--foreground", "--force", f"--key-file={key}", f"--socket={root / 'munge.socket'}",
        f"--pid-file={root / 'munged.pid'}", f"--seed-file={root / 'munged.seed'}",
        f"--log-file={root / 'munged.log'}"])


def _write_config(root: pathlib.Path, node: str) -> None:
    controller_port, node_port = _free_ports(2)
    (root / "spool").mkdir(exist_ok=True)
    (root / "state").mkdir(exist_ok=True)
    settings = {
        "ClusterName": "tests",
        "SlurmctldHost": node,
        "SlurmctldPort": controller_port,
        "SlurmdPort": node_port,
        "SlurmUser": "root",
        "AuthType": "auth/munge",
        "AuthInfo": f"socket={root / 'munge.socket'}",
        "CredType": "cred/munge",
        "StateSaveLocation": root / "state",
        "SlurmdSpoolDir": root / "spool",
        "SlurmctldPidFile": root / "slurmctld.pid",
        "SlurmdPidFile": root / "slurmd.pid",
        "SlurmctldLogFile": root / "slurmctld.log",
        "SlurmdLogFile": root / "slurmd.log",
        # No cgroups (none in most containers): processes are tracked through /proc, tasks are not bound.
        "ProctrackType": "proctrack/linuxproc",
        "TaskPlugin": "task/none",
        "JobAcctGatherType": "jobacct_gather/none",
        "AccountingStorageType": "accounting_storage/none",
        "SelectType": "select/cons_tres",
        "SelectTypeParameters": "CR_CPU",
        "MpiDefault": "none",
        "ReturnToService": 2,
        # Job ids pick the ports of a step's workers (runner.session.strategy): two test sessions on one machine
        # would both number their jobs from 1.
        "FirstJobId": random.randrange(1, 1_000_000),
        "NodeName": f"{node} NodeAddr=127.0.0.1 CPUs={os.cpu_count()} State=UNKNOWN",
        "PartitionName": f"{PARTITION} Nodes={node} Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES",
    }
    (root / "slurm.conf").write_text("".join(f"{key}={value}\n" for key, value in settings.items()))


def _free_ports(count: int) -> list[int]:
    """Ports the system has not handed out: SLURM's defaults (6817, 6818) may belong to another SLURM."""
    sockets = [socket.socket() for _ in range(count)]
    for each in sockets:
        each.bind(("127.0.0.1", 0))
    ports = [each.getsockname()[1] for each in sockets]
    for each in sockets:
        each.close()
    return ports


def _start(root: pathlib.Path, name: str, command: list[str]) -> subprocess.Popen:
    with open(root / f"{name}.out", "wb") as output:
        return subprocess.Popen([_binary(command[0]), *command[1:]], stdout=output, stderr=subprocess.STDOUT,
                                start_new_session=True)


def _wait_until_idle(cluster: Cluster, daemons: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        stopped = [daemon.args[0] for daemon in daemons if daemon.poll() is not None]
        if stopped:
            raise Unavailable(f"{', '.join(stopped)} stopped at start; see {cluster.root}")
        state = subprocess.run(["sinfo", "--noheader", "--format=%t", f"--nodes={cluster.node}"],
                               env=cluster.environment, capture_output=True, text=True, timeout=30).stdout
        if state.strip() == "idle":
            return
        time.sleep(0.5)
    raise Unavailable(f"the SLURM node was not idle within {START_SECONDS} s; see {cluster.root}")


def _cancel_jobs(cluster: Cluster) -> None:
    """Jobs a failed test left running: SLURM ends their processes, which run outside the daemons' groups."""
    subprocess.run(["scancel", f"--user={os.geteuid()}"], env=cluster.environment, capture_output=True, timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and subprocess.run(
            ["squeue", "--noheader", "--states=RUNNING,COMPLETING"], env=cluster.environment, capture_output=True,
            text=True, timeout=30).stdout.strip():
        time.sleep(0.5)


def _stop(daemon: subprocess.Popen) -> None:
    """Each daemon leads its own session: its whole group goes."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(daemon.pid, signal.SIGTERM)
    try:
        daemon.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(daemon.pid, signal.SIGKILL)
        daemon.wait()
