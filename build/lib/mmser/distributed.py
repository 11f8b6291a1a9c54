"""Which process this is when training runs on several (``trainer.strategy=ddp``).

Lightning's DDP launcher starts the whole command again on every rank (and torchrun / SLURM start every
rank themselves): each rank runs the same recipe, trains its share of every batch, and reaches every
decision from the same all-gathered validation predictions. Only the main process (global rank 0)
writes files and prints: :func:`is_main` and :func:`say` are the one gate for both.
"""

from __future__ import annotations

import os


def global_rank() -> int:
    """This process's global rank: from the process group once it exists, else from the launcher's variables
    (``RANK`` of torchrun / SLURM setups, else Lightning's ``NODE_RANK`` and ``LOCAL_RANK`` on one node); 0 alone."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    if "RANK" in os.environ:
        return int(os.environ["RANK"])
    if os.environ.get("NODE_RANK", "0") == "0":
        return int(os.environ.get("LOCAL_RANK", 0))
    return -1  # another node's process before its group exists: not the main one


def is_main() -> bool:
    """Whether this process writes files and prints (global rank 0)."""
    return global_rank() == 0


def say(*args, **kwargs) -> None:
    """``print`` on the main process only."""
    if is_main():
        print(*args, **kwargs)
