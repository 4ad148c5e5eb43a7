"""The one-shot GPU check (`python -m benchmarks.gpu_check`, or `bash benchmarks/gpu_check.sh`, which
installs carried wheels first): the production recipe's speed on this machine's card, end to end,
without network, into one folder as results.json + summary.md.

    __main__        the command: prepares generated faces, runs every section, writes the results
    step_plans      what is measured: the full plan (512 px, ~5 minutes on one H100) and --smoke's
    sections        sections run in child processes (training-step table, profiler, loader, GPU sharing)
    op_profile      script run per profiler variant: torch.profiler top ops of a few training steps
    train_members   sections that train: members with tuning.train.train(), the ensemble, its overhead
    results_report  summary.md from results.json

Run it from the repository root (the checkout need not be installed). Child processes run
benchmarks/train_throughput.py and op_profile.py as scripts.
"""
