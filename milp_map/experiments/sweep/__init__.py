"""Resumable sweeps over grids of mapping problems, on local processes or a Dask cluster."""
