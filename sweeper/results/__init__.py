"""What a sweep's trials produced, and how they compare: pure functions over the sweep folder.

    final_eval.py  the end-of-trial evaluation (run by the trainable): final/results.json, per_puzzle.npz, plots
    compare.py     paired statistics against the TTA baseline (McNemar exact, bootstrap interval)
    pairing.py     which trial is compared with which baseline trial, per TTA rule; the baseline summary
    records.py     per trial and baseline: the tags and metrics any tracking back end logs
    report.py      the `sweeper report` table (from records), its CSV/Markdown and plot
    plots.py       matplotlib figures (learning curves, halting histogram, accuracy vs cost, Optuna)

May import sweeper.util and trm_core; never sweeper.spec, sweeper.sweep, sweeper.tracking or commands.
"""
