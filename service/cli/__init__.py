"""The ``posesvc`` command line.

A posesvc process leaves the cores to torch: NumPy's OpenBLAS is limited to one thread (unless the environment
says otherwise) before anything imports NumPy. Otherwise the CPU DARK decoder's small GEMMs wake an OpenBLAS
thread pool on every call (~0.4 ms each on 2 cores) whose spinning threads compete with the network forward.
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
