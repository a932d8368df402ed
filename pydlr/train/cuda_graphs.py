"""The training step (forward, loss, backward, optimizer update) captured once in a CUDA graph and replayed.

A small model's step on a large GPU is bound by kernel launches, not arithmetic: the seed CNN at batch 64 is
about a hundred short kernels a step, each launched from Python. Replaying a captured graph launches them all
at once. The Learner uses this on CUDA by default (``set_cuda_graphs(False)`` turns it off) when the step can
be captured:

- full batches of one shape (the data are copied into the graph's input buffers; a partial last batch runs
  eagerly);
- no callback that acts inside the step (``after_pred``, ``after_loss``, ``before_step``, ``before_backward``,
  ``after_backward``): those would run once at capture, never at replay;
- no float16 gradient scaler (its step reads the gradients' finiteness on the host), no DDP;
- an optimizer of torch's with ``capturable`` support (Adam, AdamW, SGD, RMSprop, ...).

The first ``WARMUP`` full batches run eagerly on a side stream (lazy initialisation, cuDNN/cuBLAS plans,
pydlr's "auto" backend measurements happen there, outside the capture), the next is captured and replayed.
Learning-rate changes (schedules) reach the graph through a device tensor holding each group's rate; a
change of any other hyperparameter captures again. Anything that fails at capture leaves the fit eager, with
the reason in ``history.params["cuda_graph"]``.
"""

from __future__ import annotations

import torch

from pydlr.models.base import loop_call
from pydlr.train.loop_callbacks import GradScaling

__all__ = ["set_cuda_graphs", "cuda_graphs_enabled", "GraphedStep"]

_state = {"enabled": True}
# Events the Learner dispatches inside the captured region.
_STEP_EVENTS = ("after_pred", "after_loss", "before_step", "before_backward", "after_backward")
WARMUP = 3
MAX_CAPTURES = 4  # hyperparameters other than the learning rate changing more often than this: stay eager


def set_cuda_graphs(enabled: bool) -> None:
    """Capture the training step in a CUDA graph where it can be (True, the default) or never (False)."""
    from pydlr.errors import InputError

    if not isinstance(enabled, bool):
        raise InputError("enabled", "True or False", enabled, where="pydlr.train.cuda_graphs.set_cuda_graphs")
    _state["enabled"] = enabled


def cuda_graphs_enabled() -> bool:
    """Whether the Learner captures the training step on CUDA where it can."""
    return _state["enabled"]


def _hyper(group: dict) -> dict:
    return {k: v for k, v in group.items() if k not in ("params", "lr", "capturable")}


class GraphedStep:
    """The capture and replay of one Learner's training step (see the module docstring)."""

    def __init__(self, learn, batch_size: int):
        self.learn = learn
        self.batch_size = int(batch_size)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.warm = 0
        self.captures = 0
        self.replays = 0
        self.eager_after_capture = 0
        self.failed: str | None = None
        self._regrad = False
        self._grads: list = []
        self._stream = torch.cuda.Stream(device=learn.device)

    @staticmethod
    def unusable(learn) -> str | None:
        """Why this Learner's step cannot be captured (None: it can)."""
        if learn.device.type != "cuda":
            return "not on CUDA"
        if not _state["enabled"]:
            return "off (set_cuda_graphs(False))"
        if any(isinstance(cb, GradScaling) for cb in learn.cbs):
            return "float16 gradient scaling reads the gradients on the host"
        if learn.world_size > 1 or learn.forward_module is not learn.model:
            return "distributed (DDP) training"
        if "capturable" not in learn.opt.defaults:
            return f"{type(learn.opt).__name__} cannot be captured"
        hooked = sorted({cb.name for e in _STEP_EVENTS for cb, _ in learn._handlers[e]})
        if hooked:
            return f"callbacks act inside the step: {', '.join(hooked)}"
        return None

    def status(self) -> str:
        if self.failed:
            return f"eager: {self.failed}"
        if self.graph is None:
            return "eager: no full batch to capture"
        return (f"captured ({self.captures}x), {self.replays} steps replayed, "
                f"{self.eager_after_capture} eager (other batch shapes)")

    # ----- the Learner's entry points ----------------------------------------------------------------------
    def replay(self, learn) -> bool:
        """Run this batch's step from the graph (capturing it first when warm); False: run it eagerly."""
        if self.failed is not None or not self._full(learn):
            if self.graph is not None:
                learn.opt.zero_grad(set_to_none=True)  # the eager step must not add to the graph's gradients
                self.eager_after_capture += 1
                self._regrad = True
            return False
        if self.graph is None or self._hyper != [_hyper(g) for g in learn.opt.param_groups]:
            if self.warm < WARMUP:
                return False
            if self.captures >= MAX_CAPTURES:
                self._give_up(learn, f"optimizer settings changed {self.captures} times during the fit")
                return False
            if not self._capture(learn):
                return False
        self._inputs(learn)
        for group, lr_t, last in zip(learn.opt.param_groups, self._lrs, self._lr_values, strict=True):
            if group["lr"] != last[0]:
                lr_t.fill_(float(group["lr"]))
                last[0] = group["lr"]
        if self._regrad:  # an eager step replaced the gradients: point them at the graph's again
            for p, g in self._grads:
                p.grad = g
            self._regrad = False
        self.graph.replay()
        self.replays += 1
        learn.pred, learn.loss = self._pred, self._loss
        return True

    def eager_context(self, learn):
        """Where an eager training step runs: on the capture's side stream while warming up for the capture
        and after it (a partial batch), so the parameters' gradient accumulators stay on one stream."""
        if self.failed is not None:
            return _NoContext()
        if self.graph is None:
            if not self._full(learn):
                return _NoContext()
            self.warm += 1
        return _SideStream(self._stream)

    def close(self) -> None:
        """Release the graph and its memory pool. The gradients go too: an eager step after this fit would
        otherwise add to the graph's last ones (the eager loop leaves none behind either)."""
        if self.graph is not None:
            self.learn.opt.zero_grad(set_to_none=True)
        self.graph = None
        self._grads = []

    # ----- internals -----------------------------------------------------------------------------------------
    def _full(self, learn) -> bool:
        return learn.xb.shape[0] == self.batch_size

    def _inputs(self, learn) -> None:
        self._x.copy_(learn.xb, non_blocking=True)
        if self._y is not None:
            self._y.copy_(learn.yb, non_blocking=True)
        if self._w is not None:
            self._w.copy_(learn.wb, non_blocking=True)

    def _capture(self, learn) -> bool:
        opt = learn.opt
        self.graph = None
        self._x = learn.xb.clone()
        self._y = learn.yb.clone() if learn.yb is not None else None
        self._w = learn.wb.clone() if learn.wb is not None else None
        saved = [(g["lr"], g["capturable"]) for g in opt.param_groups]
        self._lrs = [torch.tensor(float(g["lr"]), dtype=torch.float32, device=learn.device)
                     for g in opt.param_groups]
        self._lr_values = [[g["lr"]] for g in opt.param_groups]
        graph = torch.cuda.CUDAGraph()
        try:
            for group, lr_t in zip(opt.param_groups, self._lrs, strict=True):
                group["capturable"] = True
                group["lr"] = lr_t
                for p in group["params"]:
                    st = opt.state.get(p, {})
                    if isinstance(st.get("step"), torch.Tensor) and st["step"].device != p.device:
                        st["step"] = st["step"].to(p.device)  # a capturable step counts on the device
            opt.zero_grad(set_to_none=True)
            self._stream.wait_stream(torch.cuda.current_stream())
            with torch.cuda.graph(graph, stream=self._stream):
                with learn.forward_context(cache_enabled=False), loop_call():
                    pred = learn.forward_module(self._x)
                loss = learn.loss_func(pred, self._y, self._w)
                loss.backward()
                opt.step()
            torch.cuda.current_stream().wait_stream(self._stream)
        except Exception as exc:  # anything the capture cannot take: stay eager, say why
            self._give_up(learn, f"capture failed ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})")
            return False
        finally:
            for group, (lr, capturable) in zip(opt.param_groups, saved, strict=True):
                group["lr"], group["capturable"] = lr, capturable
        self.graph = graph
        # Detached: the captured autograd graph is not needed for replays, and kept alive it would tie the
        # parameters' gradient accumulators to the capture stream.
        self._pred, self._loss = pred.detach(), loss.detach()
        self._grads = [(p, p.grad) for g in opt.param_groups for p in g["params"] if p.grad is not None]
        self._hyper = [_hyper(g) for g in opt.param_groups]
        self.captures += 1
        return True

    def _give_up(self, learn, reason: str) -> None:
        self.failed = reason
        self.graph = None
        self._grads = []
        learn.opt.zero_grad(set_to_none=True)


class _SideStream:
    def __init__(self, stream):
        self.stream = stream

    def __enter__(self):
        self.stream.wait_stream(torch.cuda.current_stream())
        self._ctx = torch.cuda.stream(self.stream)
        self._ctx.__enter__()

    def __exit__(self, *exc):
        self._ctx.__exit__(*exc)
        torch.cuda.current_stream().wait_stream(self.stream)
        return False


class _NoContext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False
