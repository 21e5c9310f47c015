"""Video streaming: per-stream tracking, smoothing, detection skipping and the stream runner.

Pure parts (no I/O): :mod:`.tracker`, :mod:`.smoothing`, :mod:`.session`. :mod:`.registry` holds the open
sessions; :mod:`.runner` drives one stream's frames through the shared :class:`~service.engine.PoseEngine`.
"""
