"""Which tf.distribute strategy a run uses, the device set-up that must precede it, and under
multi_worker which worker this process is."""

import contextlib
import dataclasses
import itertools
import json
import os
import pathlib
import re

import tensorflow as tf
from omegaconf import DictConfig
# Not exported by tf.distribute: how SLURM writes tasks per node ("2(x3),1"), which the resolver reads.
from tensorflow.python.distribute.cluster_resolver.slurm_cluster_resolver import expand_tasks_per_node

from runner.data.source import Shard
from runner.mistakes.errors import UserError

# Where a multi-worker cluster is read from: TF_CONFIG (set by hand, `python -m runner.cluster`,
# Kubeflow's TFJob), else a SLURM allocation of several tasks.
CLUSTER_HELP = ("set TF_CONFIG on every worker (https://www.tensorflow.org/guide/distributed_training), "
                "run inside a SLURM allocation of several tasks, or try it here: "
                "python -m runner.cluster workers=2 -- <overrides>")


@dataclasses.dataclass(frozen=True)
class Worker:
    """This process among the cluster's workers; the chief (index 0) alone records the run."""

    index: int = 0
    count: int = 1

    @property
    def chief(self) -> bool:
        return self.index == 0


def make_strategy(trainer: DictConfig) -> tf.distribute.Strategy:
    _configure_devices(trainer.cpu_replicas)
    choice = trainer.strategy.value
    if choice == "multi_worker":  # first: it must configure TensorFlow's runtime before anything starts it
        return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=_cluster_resolver())
    gpus = tf.config.list_logical_devices("GPU")
    if choice == "default" or (choice == "auto" and len(gpus) < 2 and trainer.cpu_replicas < 2):
        # One device: the default strategy, under which Keras keeps XLA on.
        return tf.distribute.get_strategy()
    devices = [device.name for device in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
    return _mirrored(devices)


_KEY_BASES = itertools.count(0, 10_000)  # far more group keys than one strategy uses (one per device set)


def _mirrored(devices: list[str]) -> tf.distribute.MirroredStrategy:
    """A MirroredStrategy over `devices` whose collective keys are its own in this process.

    TensorFlow starts every MirroredStrategy's collective group keys at 1, and its runtime keeps what
    it learnt of each (group, instance) key: a second strategy in one process (the next job of an
    in-process multirun) would meet the first one's shapes and stop ("Shape mismatch in the
    collective instance"). The base TensorFlow reads, a class attribute, moves on for each strategy.
    """
    tf.distribute.MirroredStrategy._collective_key_base = next(_KEY_BASES)
    return tf.distribute.MirroredStrategy(devices)


def worker(strategy: tf.distribute.Strategy) -> Worker:
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return Worker()
    resolver = strategy.cluster_resolver
    jobs = resolver.cluster_spec().as_dict()
    count = sum(len(jobs.get(job, [])) for job in ("chief", "worker"))
    # A cluster with a "chief" task numbers it 0 and its workers from 1; without one, worker 0 leads.
    index = resolver.task_id + (1 if resolver.task_type == "worker" and "chief" in jobs else 0)
    return Worker(index, count)


def shard(strategy: tf.distribute.Strategy, global_batch_size: int):
    """This worker's share of the data under multi_worker (None otherwise): the global batch is
    split over every replica of the cluster."""
    this = worker(strategy)
    if this.count == 1:
        return None
    replicas = strategy.num_replicas_in_sync
    if global_batch_size % replicas:
        raise UserError(f"trainer.batch_size={global_batch_size} does not split over {replicas} replicas "
                        f"({this.count} workers); use a multiple of {replicas}")
    return Shard(this.count, this.index, global_batch_size // replicas, replicas // this.count)


class WorkerLost(UserError):
    """A peer of a multi-worker run stopped; the survivors stop too, and the same commands resume."""


@contextlib.contextmanager
def lost_workers_reported(strategy: tf.distribute.Strategy):
    """A dead peer makes the collectives fail (TensorFlow's heartbeats notice in seconds): one line
    that names it and says how to go on, instead of a page of TensorFlow's."""
    try:
        yield
    except (tf.errors.UnavailableError, tf.errors.AbortedError) as error:
        if worker(strategy).count == 1:
            raise
        peers = sorted(set(re.findall(r"/job:\w+/replica:\d+/task:\d+", error.message))) or ["a worker"]
        raise WorkerLost(f"{', '.join(peers)} of the cluster stopped; relaunch every worker with the same "
                         "command and the run resumes from the last epoch all of them saved") from None


def agreed_epoch(strategy: tf.distribute.Strategy, epoch: int) -> int:
    """The smallest of every worker's `epoch` (one all-gather: tf.distribute reduces by SUM or
    MEAN only); `epoch` itself on one worker."""
    if worker(strategy).count == 1:
        return epoch
    per_replica = strategy.run(lambda: tf.constant([epoch], tf.int64))
    return int(tf.reduce_min(strategy.gather(per_replica, axis=0)))


def distributed(strategy: tf.distribute.Strategy, dataset: tf.data.Dataset):
    """The dataset across the strategy's replicas. Under multi_worker each worker already holds only
    its shard, batched per replica (runner.data.splits.load with a Shard): its replicas take turns on it."""
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return strategy.distribute_datasets_from_function(lambda context: dataset)
    return strategy.experimental_distribute_dataset(dataset)


def uses_xla(trainer: DictConfig, strategy: tf.distribute.Strategy) -> bool:
    """trainer.jit_compile, or by default XLA where it pays: one GPU under the default strategy.

    Keras turns XLA off under any tf.distribute strategy; on a CPU it slows training (measured
    here by runner.bench, docs/performance.md), so the CPU default is off.
    """
    if trainer.jit_compile is not None:
        return trainer.jit_compile
    one_device = strategy.num_replicas_in_sync == 1 and not isinstance(
        strategy, tf.distribute.MultiWorkerMirroredStrategy)
    return one_device and bool(tf.config.list_logical_devices("GPU"))


def precision(trainer: DictConfig) -> str:
    """trainer.precision, or for `auto` what the device trains fastest with: bfloat16 on GPUs with
    compute capability 8.0 or more (Ampere on; float32's range, no loss scaling), float16 with loss
    scaling on 7.x (Volta, Turing: tensor cores without bfloat16), float32 on older GPUs; on a CPU,
    bfloat16 where it has bfloat16 instructions (ResNet-18's step ran 1.45 times faster with them
    here, runner.bench; docs/performance.md), else float32."""
    if trainer.precision.value != "auto":
        return trainer.precision.value
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "mixed_bfloat16" if cpu_has_bfloat16() else "float32"
    capability = tf.config.experimental.get_device_details(gpus[0]).get("compute_capability", (0, 0))
    if capability >= (8, 0):
        return "mixed_bfloat16"
    return "mixed_float16" if capability >= (7, 0) else "float32"


def cpu_has_bfloat16() -> bool:
    """AVX-512 BF16 or AMX-BF16 (x86 Linux; elsewhere unknown, so no)."""
    try:
        flags = pathlib.Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return bool(re.search(r"\b(avx512_bf16|amx_bf16)\b", flags))


def steps_per_execution(trainer: DictConfig) -> int:
    """trainer.steps_per_execution, or by default 16 training steps per compiled call with GPUs,
    where a classic network's step takes milliseconds and the host's Python between calls would
    leave the device idle (Keras's guidance for small models), and 1 on a CPU, where one step of
    a large model takes seconds and progress, NaN and stop checks come once a call."""
    if trainer.steps_per_execution is not None:
        return trainer.steps_per_execution
    return 16 if tf.config.list_logical_devices("GPU") else 1


def _cluster_resolver():
    if os.environ.get("TF_CONFIG"):
        try:
            json.loads(os.environ["TF_CONFIG"])["task"]
        except (ValueError, KeyError, TypeError):
            raise UserError(f"TF_CONFIG is not a JSON object with 'cluster' and 'task': {CLUSTER_HELP}") from None
        return tf.distribute.cluster_resolver.TFConfigClusterResolver()
    if int(os.environ.get("SLURM_NTASKS", "1")) > 1:
        return _slurm_resolver()
    raise UserError(f"trainer.strategy=multi_worker: no cluster found; {CLUSTER_HELP}")


def _slurm_resolver() -> tf.distribute.cluster_resolver.SlurmClusterResolver:
    """The cluster of this SLURM job step, with this task's GPUs as TensorFlow sees them.

    TensorFlow's resolver counts a node's GPUs from CUDA_VISIBLE_DEVICES, else by running nvidia-smi (a
    traceback where that binary is missing: CPU nodes, containers), and shares them evenly over the
    node's tasks: a task SLURM bound to its own GPU (srun --gpus-per-task=1, CUDA_VISIBLE_DEVICES one
    id) gets none. It would make each task's share visible by setting CUDA_VISIBLE_DEVICES, too late
    once TensorFlow has listed the GPUs (_configure_devices), and numbering them from 0, not as SLURM
    does. Here the GPUs are the ones TensorFlow lists (SLURM's CUDA_VISIBLE_DEVICES applied); where
    every task of a node sees all of them, each takes its own share.
    """
    tasks_per_node = max(expand_tasks_per_node(os.environ.get("SLURM_STEP_TASKS_PER_NODE", "1")))
    gpus = _this_tasks_gpus(tf.config.list_physical_devices("GPU"), tasks_per_node)
    if gpus:
        tf.config.set_visible_devices(gpus, "GPU")
    return _SlurmResolver(len(gpus), tasks_per_node, port_base=_port_base(tasks_per_node))


def _this_tasks_gpus(gpus: list, tasks_per_node: int) -> list:
    """All the GPUs a task sees where SLURM bound them to it (fewer than SLURM_GPUS_ON_NODE, the step's
    GPUs on the node); where the node's tasks all see the same ones, this task's share by SLURM_LOCALID."""
    shared = len(gpus) >= int(os.environ.get("SLURM_GPUS_ON_NODE", len(gpus)))
    if not gpus or not shared or tasks_per_node == 1:
        return gpus
    share = len(gpus) // tasks_per_node
    if not share:
        raise UserError(f"{tasks_per_node} tasks per node share {len(gpus)} GPUs; ask SLURM for a GPU per task "
                        "(srun --gpus-per-task=1) or as many tasks per node as GPUs")
    local = int(os.environ.get("SLURM_LOCALID", "0"))
    return gpus[local * share:(local + 1) * share]


def _port_base(tasks_per_node: int) -> int:
    """The first of the node's ports for this step's workers, the same in every task: from TensorFlow's
    default 8888, moved by the job and step ids, so two steps sharing a node do not both bind 8888.
    Ports stay below 28888, under Linux's ephemeral range (32768 on)."""
    step = int(os.environ.get("SLURM_JOB_ID", "0")) * 16 + int(os.environ.get("SLURM_STEP_ID", "0"))
    return 8888 + step % (20000 // tasks_per_node) * tasks_per_node


class _SlurmResolver(tf.distribute.cluster_resolver.SlurmClusterResolver):
    """TensorFlow's resolver told this task's GPU count instead of counting the node's. It pairs each task
    of a node with a GPU slot and drops the tasks that get none: on CPU nodes each task has one
    placeholder slot, never made visible (auto_set_gpu off), and no accelerator."""

    def __init__(self, gpus_per_task: int, tasks_per_node: int, port_base: int):
        slots = max(gpus_per_task, 1)
        super().__init__(port_base=port_base, gpus_per_node=slots * tasks_per_node, gpus_per_task=slots,
                         auto_set_gpu=False)
        self._gpus = gpus_per_task

    def num_accelerators(self, task_type=None, task_id=None, config_proto=None):
        """The devices MultiWorkerMirroredStrategy puts this worker's replicas on: its GPUs, else its CPU."""
        return {"GPU": self._gpus} if self._gpus else {}


def _configure_devices(cpu_replicas: int) -> None:
    # TensorFlow keeps GPU memory for the life of the process; grow it as needed instead, so
    # jobs sharing a process (a multirun) and other processes can use the rest.
    for gpu in tf.config.list_physical_devices("GPU"):
        tf.config.experimental.set_memory_growth(gpu, True)
    if cpu_replicas < 2:
        return
    cpu = tf.config.list_physical_devices("CPU")[0]
    wanted = [tf.config.LogicalDeviceConfiguration()] * cpu_replicas
    if tf.config.get_logical_device_configuration(cpu) == wanted:
        return
    try:
        tf.config.set_logical_device_configuration(cpu, wanted)
    except RuntimeError:
        raise UserError(
            f"trainer.cpu_replicas={cpu_replicas}: TensorFlow has already started in this process "
            "with another device split; run the job in a fresh process"
        ) from None
