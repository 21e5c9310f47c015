"""posesvc: top-down human pose estimation service (YOLO → affine crop → HRNet + flip → DARK).

Layers import one way only: transport → engine → pipeline → nets / codecs. ``schemas``, ``errors``,
``settings`` and ``observability`` are shared by all and import nothing else from the project.
"""

__version__ = "0.1.0"
