"""Batch jobs over many images and videos (``posesvc annotate``): items, the resumable journal, the embedded
runner and the Ray runner."""
