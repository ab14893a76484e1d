"""Running a batch: the call processor (one call from source to written results), the
executors that spread calls over processes or a Ray cluster, the index of processed calls,
the stage cache, the checks made before any work starts, and the batch's outputs."""
