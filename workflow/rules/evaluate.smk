rule evaluate_test:
    input:
        dataset=get_dataset(),
        split="results/splits/run{run}.json",
        model="results/models/run{run}/model.pt",
    output:
        metrics=report(
            "results/evaluation/run{run}/metrics.csv",
            caption="../report/metrics.rst",
            category="Crop classification",
            labels={"run": "{run}", "figure": "headline scores (table)"},
        ),
        per_class=report(
            "results/evaluation/run{run}/per_class.csv",
            caption="../report/per_class.rst",
            category="Crop classification",
            labels={"run": "{run}", "figure": "per-class scores (table)"},
        ),
        confusion="results/evaluation/run{run}/confusion_matrix.csv",
        parcel_per_class="results/evaluation/run{run}/parcel_per_class.csv",
        parcel_confusion="results/evaluation/run{run}/parcel_confusion_matrix.csv",
        parcels="results/evaluation/run{run}/parcel_votes.csv",
        confusion_figure=report(
            "results/figures/run{run}/confusion_matrix.png",
            caption="../report/confusion_matrix.rst",
            category="Crop classification",
            labels={"run": "{run}", "figure": "confusion matrix"},
        ),
        f1_figure=report(
            "results/figures/run{run}/per_class_f1.png",
            caption="../report/per_class_f1.rst",
            category="Crop classification",
            labels={"run": "{run}", "figure": "per-class F1"},
        ),
        maps_figure=report(
            "results/figures/run{run}/classification_maps.png",
            caption="../report/classification_maps.rst",
            category="Crop classification",
            labels={"run": "{run}", "figure": "classification maps"},
        ),
    log:
        "logs/evaluate_test/run{run}.log",
    benchmark:
        "benchmarks/evaluate_test/run{run}.tsv"
    conda:
        ENV
    threads: 4
    resources:
        mem_mb=4000,
        runtime=lambda wildcards, attempt: 60 * attempt,
        gpu=1 if config["training"]["device"].startswith("cuda") else 0,
    params:
        root=dataset_root,
        device=config["training"]["device"],
        n_samples=config["evaluation"]["sample_maps"],
    script:
        "../scripts/evaluate_test.py"


rule summarise_folds:
    input:
        expand("results/evaluation/run{run}/confusion_matrix.csv", run=range(1, 6)),
    output:
        report(
            "results/evaluation/five_fold_summary.csv",
            caption="../report/five_fold_summary.rst",
            category="Crop classification",
        ),
    log:
        "logs/summarise_folds.log",
    conda:
        ENV
    script:
        "../scripts/summarise_folds.py"
