"""Peer: Lightning's Trainer on the seed CNN, written as its tutorials write it.

A LightningModule with training_step and configure_optimizers, a DataLoader over a TensorDataset (batch 64,
shuffled), Trainer(accelerator="cpu", devices=1) with progress bar, logger and checkpoints off.
"""

from __future__ import annotations

import warnings

import peer_common as pc
from torchvision_cpu import import_torchvision

args = pc.parse_args(__doc__)
pc.set_thread_env(args.threads, args.interop)

import_torchvision()  # lightning imports torchmetrics, which imports torchvision when it is installed
import lightning as L  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

threads = pc.set_torch_threads(torch, args.threads, args.interop)
L.seed_everything(pc.SEED, verbose=False)
warnings.filterwarnings("ignore", ".*does not have many workers.*")


class SeedCNN(L.LightningModule):
    """The seed CNN as a LightningModule (NCHW, the default memory format)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3), nn.ReLU(), nn.Flatten(),
            nn.Linear(64 * 3 * 3, 64), nn.ReLU(), nn.Linear(64, 10),
        )
        self.loss = nn.CrossEntropyLoss()

    def forward(self, x):  # noqa: D102
        return self.net(x)

    def training_step(self, batch, batch_idx):  # noqa: D102
        x, y = batch
        return self.loss(self(x), y)

    def configure_optimizers(self):  # noqa: D102
        return torch.optim.Adam(self.parameters(), lr=pc.LEARNING_RATE)


class EpochTimer(L.Callback):
    """Feeds the Trainer's epoch boundaries to the shared clock."""

    def __init__(self, clock: pc.EpochClock) -> None:
        self.clock = clock

    def on_train_epoch_start(self, trainer, pl_module):  # noqa: D102
        self.clock.start()

    def on_train_epoch_end(self, trainer, pl_module):  # noqa: D102
        self.clock.stop()


x_train, y_train, x_test, y_test = pc.load_fashion_mnist(args.limit)
to_nchw = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2).contiguous()  # noqa: E731
loader = DataLoader(TensorDataset(to_nchw(x_train), torch.from_numpy(y_train)),
                    batch_size=pc.BATCH_SIZE, shuffle=True)
model = SeedCNN()
clock = pc.EpochClock()
trainer = L.Trainer(max_epochs=args.epochs, accelerator="cpu", devices=1, logger=False,
                    enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                    callbacks=[EpochTimer(clock)])
trainer.fit(model, loader)

xe = to_nchw(x_test)


@torch.inference_mode()
def probs(x: torch.Tensor):
    model.eval()
    return torch.cat([model(x[i:i + args.predict_batch]) for i in range(0, len(x), args.predict_batch)]
                     ).softmax(1).numpy()


acc = float((probs(xe).argmax(1) == y_test).mean())
ips = None if args.no_predict else pc.time_predict(probs, xe)
pc.write_result(args, f"Lightning {L.__version__}", clock, acc, ips,
                {"lightning": L.__version__, "torch": torch.__version__}, threads)
