rule extract_attention:
    input:
        dataset=get_dataset(),
        model="results/models/run{run}/model.pt",
    output:
        "results/attention/run{run}/patches/ATT_{patch}.npz",
    log:
        "logs/extract_attention/run{run}/{patch}.log",
    benchmark:
        "benchmarks/extract_attention/run{run}/{patch}.tsv"
    conda:
        ENV
    threads: 2
    resources:
        mem_mb=3000,
        runtime=lambda wildcards, attempt: 30 * attempt,
        gpu=1 if config["training"]["device"].startswith("cuda") else 0,
    params:
        root=dataset_root,
        device=config["training"]["device"],
    script:
        "../scripts/extract_attention.py"


rule cloud_reference:
    input:
        get_dataset(),
    output:
        "results/clouds/{reference}/CLOUD_{patch}.npy",
    log:
        "logs/cloud_reference/{reference}/{patch}.log",
    conda:
        ENV
    threads: 1
    resources:
        mem_mb=2000,
    params:
        root=dataset_root,
    script:
        "../scripts/cloud_reference.py"


rule score_patch:
    input:
        dataset=get_dataset(),
        attention="results/attention/run{run}/patches/ATT_{patch}.npz",
        references=expand(
            "results/clouds/{reference}/CLOUD_{{patch}}.npy", reference=REFERENCES
        ),
    output:
        counts="results/attention/run{run}/scores/{split}_{patch}.npz",
        samples="results/attention/run{run}/scores/{split}_{patch}_samples.csv",
    log:
        "logs/score_patch/run{run}/{split}_{patch}.log",
    benchmark:
        "benchmarks/score_patch/run{run}/{split}_{patch}.tsv"
    conda:
        ENV
    resources:
        mem_mb=3000,
        runtime=lambda wildcards, attempt: 20 * attempt,
    params:
        root=dataset_root,
        seed=config["attention"]["seed"],
    script:
        "../scripts/score_patch.py"


rule score_attention:
    input:
        counts=get_score_files,
        samples=lambda wildcards: get_score_files(wildcards, "_samples.csv"),
    output:
        table="results/attention/run{run}/cloud_scores.csv",
        summary=report(
            "results/attention/run{run}/summary.md",
            caption="../report/attention_summary.rst",
            category="Attention as a cloud mask",
            labels={"run": "{run}", "figure": "answer"},
        ),
        roc_pr=report(
            "results/figures/run{run}/attention_roc_pr.png",
            caption="../report/attention_roc_pr.rst",
            category="Attention as a cloud mask",
            labels={"run": "{run}", "figure": "ROC and PR curves"},
        ),
        distributions=report(
            "results/figures/run{run}/attention_distributions.png",
            caption="../report/attention_distributions.rst",
            category="Attention as a cloud mask",
            labels={"run": "{run}", "figure": "attention by category"},
        ),
        heads=report(
            "results/figures/run{run}/attention_auc_per_head.png",
            caption="../report/attention_auc_per_head.rst",
            category="Attention as a cloud mask",
            labels={"run": "{run}", "figure": "AUC per head"},
        ),
    log:
        "logs/score_attention/run{run}.log",
    benchmark:
        "benchmarks/score_attention/run{run}.tsv"
    conda:
        ENV
    resources:
        mem_mb=8000,
        runtime=lambda wildcards, attempt: 60 * attempt,
    params:
        bootstrap=config["attention"]["bootstrap"],
        seed=config["attention"]["seed"],
    script:
        "../scripts/score_attention.py"


rule plot_attention_examples:
    input:
        dataset=get_dataset(),
        table="results/attention/run{run}/cloud_scores.csv",
        attention=get_example_attention,
        reference=get_example_reference,
    output:
        dates=report(
            "results/figures/run{run}/attention_dates.png",
            caption="../report/attention_dates.rst",
            category="Attention as a cloud mask",
            labels={"run": "{run}", "figure": "attention on chosen dates"},
        ),
        series=report(
            "results/figures/run{run}/attention_time_series.png",
            caption="../report/attention_time_series.rst",
            category="Attention as a cloud mask",
            labels={"run": "{run}", "figure": "one patch, every date"},
        ),
    log:
        "logs/plot_attention_examples/run{run}.log",
    conda:
        ENV
    params:
        root=dataset_root,
        patch=get_example_patch,
        reference=PRIMARY_REFERENCE,
    script:
        "../scripts/plot_attention_examples.py"


rule summarise_attention:
    input:
        expand("results/attention/run{run}/cloud_scores.csv", run=RUNS),
    output:
        report(
            "results/attention/runs_summary.csv",
            caption="../report/attention_runs_summary.rst",
            category="Attention as a cloud mask",
        ),
    log:
        "logs/summarise_attention.log",
    conda:
        ENV
    params:
        runs=RUNS,
    script:
        "../scripts/summarise_attention.py"
