"""Many images at once: `nbnumba sweep` (a rotation series) and `nbnumba batch` (a CSV job file),
rendered by a Dask cluster, resumable through a manifest.  User guide: docs/batch.md.

Modules: `frames` (each image's complete `nbnumba run` argv, output names, hash; the CSV job
format), `jobs` (the worker side: build, render, write; per-worker caches), `cluster` (embedded
LocalCluster on CPUs or one worker per GPU, or `--scheduler ADDRESS`), `quiet` (its workers start
ignoring Ctrl-C), `manifest` (done frames),
`engine` (the client loop: skip, submit, record, progress, summary), `sink` (the one-file
outputs); the command lines are `nbnumba.commands.sweep`.

Clusters beyond one machine (the workers must see the same file system as the client, which
passes absolute paths; run each worker with one thread, `--nthreads 1`, since a frame's kernels
are already parallel):

* SLURM/PBS with dask-jobqueue: in Python, `SLURMCluster(cores=1, processes=1, job_cpu=32,
  memory="64GB", walltime="04:00:00").scale(jobs=8)` (PBS: `PBSCluster(..., resource_spec=
  "select=1:ncpus=32:mem=64GB")`; one single-threaded worker per 32-core job, `-nthreads 32` in
  the run flags), then pass `cluster.scheduler_address`
  to `nbnumba sweep ... --scheduler tcp://HOST:8786`.  The dask-scheduler/dask-worker command
  lines work too: `dask scheduler --scheduler-file s.json` on one node, `dask worker
  --scheduler-file s.json --nthreads 1 --nworkers 1` in each job (one per GPU with
  CUDA_VISIBLE_DEVICES set), and `--scheduler $(python -c "import json;print(json.load(open('s.json'))['address'])")`.
* MPI with dask-mpi: `mpirun -np 9 dask-mpi --scheduler-file s.json --nthreads 1` starts the
  scheduler on rank 0 and workers on the other ranks; run nbnumba as above with the address
  from s.json.

May import: amorphous, response, kernels, model, physics, runtime, io.
"""
