# am4cm: can the temporal attention of a crop-type LTAE serve as an unsupervised cloud mask?
# The study, stage by stage: PASTIS (real or synthetic) -> index -> splits -> pixel cache
# -> LTAE training -> test evaluation.


from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


wildcard_constraints:
    run=r"[1-5]",


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"


rule all:
    default_target: True
    input:
        get_final_output(),
