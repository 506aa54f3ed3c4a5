# am4cm: can the temporal attention of a crop-type LTAE serve as an unsupervised cloud mask?
# The study, stage by stage: PASTIS (real or synthetic) -> index -> splits -> pixel cache
# -> LTAE training -> test evaluation -> attention extraction and cloud references
# -> attention scored as a cloud detector -> figures.


from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


wildcard_constraints:
    run=r"[1-5]",
    patch=r"\d+",
    reference=r"[a-z]+",
    split=r"val|test",


localrules:
    all,
    split_folds,
    plot_dataset_patch,
    plot_training_curves,


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/attention.smk"


rule all:
    default_target: True
    input:
        get_final_output(),
