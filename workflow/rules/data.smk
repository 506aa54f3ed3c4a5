if is_synthetic():

    rule generate_synthetic:
        output:
            directory(SYNTHETIC_ROOT),
        log:
            "logs/generate_synthetic.log",
        benchmark:
            "benchmarks/generate_synthetic.tsv"
        conda:
            ENV
        params:
            seed=config["synthetic"]["seed"],
            patches_per_fold=config["synthetic"]["patches_per_fold"],
            patch_size=config["synthetic"]["patch_size"],
        script:
            "../scripts/generate_synthetic.py"


rule index_dataset:
    input:
        get_dataset(),
    output:
        "results/index/patches.csv",
    log:
        "logs/index_dataset.log",
    conda:
        ENV
    params:
        root=dataset_root,
    script:
        "../scripts/index_dataset.py"


checkpoint split_folds:
    input:
        "results/index/patches.csv",
    output:
        "results/splits/run{run}.json",
    log:
        "logs/split_folds/run{run}.log",
    conda:
        ENV
    script:
        "../scripts/split_folds.py"


rule plot_dataset_patch:
    input:
        dataset=get_dataset(),
        index="results/index/patches.csv",
    output:
        report(
            "results/figures/dataset_patch.png",
            caption="../report/dataset_patch.rst",
            category="Data",
        ),
    log:
        "logs/plot_dataset_patch.log",
    conda:
        ENV
    params:
        root=dataset_root,
    script:
        "../scripts/plot_dataset_patch.py"
