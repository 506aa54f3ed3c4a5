"""Snakemake adapter: attention, predictions and confidence of every pixel of one patch."""

import torch

from am4cm.attention.extract import extract_patch_attention
from am4cm.runlog import log_to_file
from am4cm.training.train import load_model, pick_device

log = log_to_file(snakemake.log[0], "extract_attention")
torch.set_num_threads(snakemake.threads)
device = pick_device(snakemake.params["device"])
patch_id = int(snakemake.wildcards["patch"])
model = load_model(snakemake.input["model"], device)
extract_patch_attention(snakemake.params["root"], patch_id, model, device, snakemake.output[0])
log.info("patch %d: attention written to %s", patch_id, snakemake.output[0])
