"""Compute targets: where a pipeline's steps run (``local``: a process pool on this machine)."""
