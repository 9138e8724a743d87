"""A short MLM training run on real sequences with a tiny ESM, for the kill-and-resume and DDP tests.

Run as a script (a subprocess of the tests): ``python mlm_run.py OUT_DIR [--resume] [--devices N]``,
or in-process with :func:`run` (one thread either way, so that results compare bit for bit).
After each optimizer step rank 0 writes the step number to ``OUT_DIR/progress`` (so that the
parent can SIGKILL it mid-epoch); every rank appends the sequences of each training batch it
collates to ``OUT_DIR/seen-rank{R}.txt`` and, at the end, saves its final weights to
``OUT_DIR/final-rank{R}.safetensors``. Dropout is on (0.1), so the run consumes the global RNG.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch


def run(out: Path, *, resume: bool = False, devices: int = 1, steps: int = 40, dropout: float = 0.1) -> None:
    """The training run (see the module docs); restores the caller's torch thread count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _run(out, resume=resume, devices=devices, steps=steps, dropout=dropout)
    finally:
        torch.set_num_threads(threads)


def _run(out: Path, *, resume: bool, devices: int, steps: int, dropout: float) -> None:
    from lightning.pytorch.callbacks import Callback
    from safetensors.torch import save_file
    from torch.utils.data import DataLoader

    from plmstruct.backbone import tiny_esm
    from plmstruct.data.paths import data_file
    from plmstruct.data.secondary_structure import read_three_line
    from plmstruct.io import atomic_write_text
    from plmstruct.training import OptimConfig, SeededDataset, TrainConfig, fit
    from plmstruct.training.mlm import MLMModule, SequenceMLMDataModule

    class Progress(Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            if trainer.is_global_zero:
                atomic_write_text(out / "progress", str(trainer.global_step))

    class RecordingDataModule(SequenceMLMDataModule):
        """Writes down which sequences this rank trains on."""

        def _collate_and_record(self, items):
            with open(out / f"seen-rank{self.trainer.global_rank}.txt", "a") as fh:
                fh.writelines(seq + "\n" for seq, _ in items)
            return self.collate(items)

        def train_dataloader(self) -> DataLoader:
            return DataLoader(SeededDataset(self.train_seqs), batch_sampler=self.train_sampler,
                              collate_fn=self._collate_and_record)

    seqs = [r.sequence for r in read_three_line(data_file("secondary_structure", "CASP12.txt"))]
    backbone = tiny_esm(seed=0, num_layers=2, hidden_size=32, num_heads=4)
    for m in backbone.model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = dropout
    dm = RecordingDataModule(backbone, seqs[:36], seqs[36:], batch_size=3, max_len=64, seed=7)
    cfg = TrainConfig(out_dir=out, max_steps=steps, batch_size=3, val_every_n_steps=10,
                      checkpoint_every_n_steps=4, log_every_n_steps=1, progress=False, seed=3,
                      resume=resume, accelerator="cpu", devices=devices,
                      strategy="ddp" if devices > 1 else "auto")
    module = MLMModule(backbone, OptimConfig(lr=3e-3, warmup_steps=5, schedule="cosine"), total_steps=steps)
    trainer = fit(module, dm, cfg, callbacks=[Progress()])
    state = {k: v.detach().contiguous() for k, v in backbone.model.state_dict().items()
             if k != "lm_head.decoder.weight"}  # tied to the token embedding
    save_file(state, str(out / f"final-rank{trainer.global_rank}.safetensors"))



def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--dropout", type=float, default=0.1)
    args = parser.parse_args()
    run(args.out, resume=args.resume, devices=args.devices, steps=args.steps, dropout=args.dropout)


if __name__ == "__main__":
    main()
