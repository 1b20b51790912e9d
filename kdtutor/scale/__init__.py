"""Scaling out: torchrun / DistributedDataParallel glue and saved teacher logits."""
