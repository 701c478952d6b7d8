"""course_utils: the one package behind the course notebooks, tests and command line.

Data flows one way: data -> models (layers) -> train -> results -> viz/widgets. Imports
follow it: a module imports only from its own layer or a lower one, with no cycles
(tests/test_packaging.py checks it)::

    base      checks (argument checks)   files (atomic writes)   env (device, seeds)
              viz, nbtools, sources, stats (import nothing of the kit: any layer may use them)
    data      datafiles (find, check, read the files) -> data (loaders, augmentation,
              DataBundle.recipe()) ; sample (the embedded CIFAR-10 sample)
    models    layers + dense_layers (building blocks) -> models/ (the zoo, create_model
              stamps model.course_cfg) ; profile (parameters, MACs, latency)
    train     config (TrainConfig, presets) -> devices (AMP, channels_last, DDP, threads,
              seeding) ; schedule (LR via LambdaLR, plateau, early stop) ; checkpoint
              (run folder, resume) ; summary (what a run records) -> train (fit, run, CLI)
    results   ablate (Table 1 runner; its tables in ablate_results; runs: one run in its
              own process; launch: rows as Slurm jobs, a folder's status) ; dense2net (the
              report's command line)
    widgets   callbacks (LivePlot) ; widgets (explorers) ; nb (notebook setup) ;
              classroom (student versions, grading) ; runbook (make course)

The engine's map, with what each module holds: course_utils/ENGINE.md; the zoo's:
course_utils/models/README.md.
"""

__version__ = "0.1.0"
