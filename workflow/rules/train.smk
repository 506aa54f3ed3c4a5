rule sample_pixels:
    input:
        dataset=get_dataset(),
        split="results/splits/run{run}.json",
    output:
        directory("results/cache/run{run}"),
    log:
        "logs/sample_pixels/run{run}.log",
    benchmark:
        "benchmarks/sample_pixels/run{run}.tsv"
    conda:
        ENV
    resources:
        mem_mb=2000,
        runtime=lambda wildcards, attempt: 60 * attempt,
    params:
        root=dataset_root,
        sampling=config["sampling"],
    script:
        "../scripts/sample_pixels.py"


rule train_model:
    input:
        "results/cache/run{run}",
    output:
        model="results/models/run{run}/model.pt",
        history="results/models/run{run}/history.csv",
    log:
        "logs/train_model/run{run}.log",
    benchmark:
        "benchmarks/train_model/run{run}.tsv"
    conda:
        ENV
    threads: 4
    resources:
        mem_mb=4000,
        runtime=lambda wildcards, attempt: 240 * attempt,
        gpu=1 if config["training"]["device"].startswith("cuda") else 0,
    params:
        training=config["training"],
        model=config["model"],
        resume_state=lambda wildcards, output: str(
            Path(output.model).with_name("resume_state.pt")
        ),
    script:
        "../scripts/train_model.py"


rule plot_training_curves:
    input:
        "results/models/run{run}/history.csv",
    output:
        report(
            "results/figures/run{run}/training_curves.png",
            caption="../report/training_curves.rst",
            category="Training",
            labels={"run": "{run}", "figure": "training curves"},
        ),
    log:
        "logs/plot_training_curves/run{run}.log",
    conda:
        ENV
    script:
        "../scripts/plot_training_curves.py"
