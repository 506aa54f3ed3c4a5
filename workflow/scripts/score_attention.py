"""Snakemake adapter: pool the per-patch scores into the study's table, answer and figures."""

from pathlib import Path

from am4cm.attention.study import gather_study
from am4cm.figures.attention import plot_attention_distributions, plot_auc_heatmap, plot_roc_pr
from am4cm.io import write_csv
from am4cm.runlog import log_to_file

log = log_to_file(snakemake.log[0], "score_attention")
run = snakemake.wildcards["run"]
result = gather_study(
    list(snakemake.input["counts"]),
    list(snakemake.input["samples"]),
    n_boot=snakemake.params["bootstrap"],
    seed=snakemake.params["seed"],
)
write_csv(result.table, snakemake.output["table"])
Path(snakemake.output["summary"]).write_text(result.summary)
log.info("answer:\n%s", result.summary)
plot_roc_pr(
    [c for c in result.suite.curves("cloud") if not c.score.startswith("head_")],
    snakemake.output["roc_pr"],
    f"Run {run}: attention scores and reference detectors as cloud detectors (test patches)",
)
plot_attention_distributions(
    result.samples,
    snakemake.output["distributions"],
    f"Run {run}: attention \u00d7 T of test (pixel, date) pairs by reference category",
)
plot_auc_heatmap(
    result.table, snakemake.output["heads"], f"Run {run}: test ROC AUC of each head's attention"
)
