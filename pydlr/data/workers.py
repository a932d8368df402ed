"""Worker processes that augment the next batches while the model trains on the current one.

Design (why it is not a torch DataLoader): the main process decides every batch's indices and seed,
workers write augmented batches into a fixed ring of shared-memory slots allocated once, and only
``(step, slot)`` travels back through a pipe. No per-batch shared-memory file, no pickled tensors, no
per-sample Python. Workers run torch with one thread each and start by fork, so the data set is shared
copy-on-write, not copied. On a 2-core machine one worker is enough: a batch's augmentation costs a
fraction of its training step, and more workers only take cores from the compute threads.
Each worker has its own pair of one-way pipes (tasks in, results out), so the main process needs no
queue feeder threads and no locks: batch ``s`` goes to worker ``s % workers``.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing as mp
import os
import signal
import traceback
from collections.abc import Callable, Iterator

import torch

from pydlr.data.augment import Augment
from pydlr.errors import TrainingError

__all__ = ["AugmentPool", "PoolOwner", "WorkerPool", "one_thread", "serve"]


def _exit_with_parent(parent: int) -> None:
    """Ask Linux to end this worker when the process that started it dies (killed, or an R session
    ended without closing the pool). Without it the worker waits on its task pipe forever: fork gave it
    the pipe's write end too, so the pipe never reports end-of-file."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the pipe's end-of-file is all there is
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(0)


_PR_SET_PDEATHSIG = 1


def serve(tasks, results, handle: Callable[..., tuple], niceness: int = 0, parent: int | None = None) -> None:
    """A worker process's loop: ``results.send(handle(*task))`` for each task until the main process
    sends None or closes its end (or dies: ``parent``, its pid). ``handle`` reports its own failures in
    the tuple it returns."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    if parent is not None:
        _exit_with_parent(parent)
    if niceness:
        try:
            os.nice(niceness)
        except OSError:  # not permitted here: run at the parent's priority
            pass
    torch.set_num_threads(1)
    while True:
        try:
            task = tasks.recv()
        except EOFError:  # the main process closed its end
            return
        if task is None:
            return
        results.send(handle(*task))


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread inside the block, as worker processes do. A batch's decoding, augmentation and
    maps are many small operators: split over the compute threads, each waits for the other threads to wake
    and meet it. Measured (60,000 cached 28 x 28 images through the dataset path in the training process, 2
    cores, machine shared with other jobs, 2026-12-05): 0.4-1.5 s an epoch on 2 threads, 0.07-0.10 s on 1."""
    threads = torch.get_num_threads()
    if threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _augment_batch(x: torch.Tensor, slots: list[torch.Tensor], augment: Augment,
                   step: int, slot: int, idx, seed: int) -> tuple:
    try:
        g = torch.Generator().manual_seed(seed)
        xb = augment(x.index_select(0, torch.from_numpy(idx)), g)
        slots[slot][: len(idx)].copy_(xb)
        return step, slot, None
    except Exception:  # noqa: BLE001 - reported to the main process, which raises
        return step, slot, traceback.format_exc()


class WorkerPool:
    """Worker processes started by fork, each with its own pair of one-way pipes, running ``serve``.

    Subclasses keep ``slots`` and their own ``run``; ``what`` names the workers in error messages.
    """

    what = "worker"

    def __init__(self, workers: int, handle: Callable[..., tuple], niceness: int = 0):
        ctx = mp.get_context("fork")
        self.task_out, self.result_in, self.procs = [], [], []
        for _ in range(workers):
            task_r, task_w = ctx.Pipe(duplex=False)
            res_r, res_w = ctx.Pipe(duplex=False)
            p = ctx.Process(target=serve, daemon=True, args=(task_r, res_w, handle, niceness, os.getpid()))
            p.start()
            task_r.close()  # the child holds these ends now
            res_w.close()
            self.task_out.append(task_w)
            self.result_in.append(res_r)
            self.procs.append(p)
        self._ready: list = []

    def _drain(self, in_flight: int) -> None:
        for _ in range(in_flight):
            try:
                self._get()
            except TrainingError:
                return

    def _get(self):
        from multiprocessing.connection import wait

        while not self._ready:
            sentinels = {p.sentinel: p for p in self.procs}
            ready = wait(self.result_in + list(sentinels), timeout=5.0)
            self._ready = [c for c in ready if c in self.result_in]
            dead = [sentinels[c] for c in ready if c in sentinels]
            if dead and not self._ready:
                raise self._died(dead[0])
        conn = self._ready.pop()
        try:
            return conn.recv()
        except EOFError:
            proc = self.procs[self.result_in.index(conn)] if conn in self.result_in else None
            raise self._died(proc) from None

    def _died(self, proc) -> TrainingError:
        """Which worker died and how (a signal is usually the out-of-memory killer), and what to do."""
        if proc is None:
            return TrainingError(f"an {self.what} process died (its pipe closed)")
        proc.join(timeout=1)
        code = proc.exitcode
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        return TrainingError(f"an {self.what} process (pid {proc.pid}) died ({how}; the system's out-of-memory "
                             "killer does this when memory runs out): fit again, with fewer workers or a smaller "
                             "batch_size if it recurs")

    def close(self) -> None:
        for conn in self.task_out:
            try:
                conn.send(None)
                conn.close()
            except (OSError, ValueError):
                pass
        for conn in self.result_in:
            conn.close()
        self.task_out, self.result_in = [], []
        for p in self.procs:
            p.join(timeout=2)
            if p.is_alive():
                p.terminate()
        self.procs = []


class PoolOwner:
    """Mixin for an object that starts a ``WorkerPool`` on demand in ``self._pool``: closing it (or
    dropping the object) stops the workers."""

    _pool: WorkerPool | None = None

    def close(self) -> None:
        """Stop the worker processes, if any."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __del__(self) -> None:
        self.close()


class AugmentPool(WorkerPool):
    """``workers`` processes and ``2 * workers + 1`` shared batch slots."""

    what = "augmentation worker"

    def __init__(self, x: torch.Tensor, augment: Augment, batch_size: int, workers: int):
        n_slots = 2 * workers + 1
        shape = (batch_size,) + tuple(x.shape[1:])
        self.slots = [torch.empty(shape, dtype=torch.float32).share_memory_() for _ in range(n_slots)]
        super().__init__(workers, functools.partial(_augment_batch, x, self.slots, augment))

    def run(self, batches: list[tuple[torch.Tensor, int]]) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(xb, idx)`` in order for ``batches`` = [(indices, seed), ...].

        xb is a view of a slot, valid until the next item is requested.
        """
        free = list(range(len(self.slots)))
        done: dict[int, int] = {}
        submitted = 0

        def submit() -> None:
            nonlocal submitted
            idx, seed = batches[submitted]
            conn = self.task_out[submitted % len(self.task_out)]
            conn.send((submitted, free.pop(), idx.numpy(), seed))  # numpy: no shm file per batch
            submitted += 1

        while submitted < len(batches) and len(free) > 1:  # one slot stays with the consumer
            submit()
        held: int | None = None
        consumed = 0
        try:
            for step in range(len(batches)):
                while step not in done:
                    s, slot, err = self._get()
                    if err is not None:
                        raise TrainingError(f"augmentation worker failed on batch {s}:\n{err}")
                    done[s] = slot
                slot = done.pop(step)
                consumed += 1
                if held is not None:
                    free.append(held)
                held = slot
                if submitted < len(batches) and free:
                    submit()
                idx = batches[step][0]
                yield self.slots[slot][: idx.shape[0]], idx
        finally:
            # collect what is still in flight (an interrupted epoch) so the next run starts clean
            self._drain(submitted - consumed - len(done))
