"""Grading a class: the course folder and its gradebook, one job per submission, parallel workers
(Dask), and the one process that merges their results."""
