"""The pipeline: the steps (`steps`, `scratch`, `study_steps`) and their provenance, the workflow's
checks before any job (`before_jobs`), the command line over the steps (`cli`), the `nnprune` entry
point (`entry`) that runs a command in the warm server (`launch`: client, `warm_server`: server) or
in its own process, and what that process sets once (`process`: allocator, threads, seeds)."""
