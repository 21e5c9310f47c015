"""The ``posesvc`` command line.

A posesvc process shares the cores well, so the environment is set before anything imports NumPy or torch
(values the user set are kept):

* NumPy's OpenBLAS is limited to one thread. Otherwise the CPU DARK decoder's small GEMMs wake an OpenBLAS
  thread pool on every call (~0.4 ms each on 2 cores) whose spinning threads compete with the network forward.
* OpenMP threads (torch's intra-op pool) wait passively instead of spinning between kernels: a spinning pool
  takes CPU time from every other process on the machine (see ``service/backends/threads.py``).
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
for _name, _value in (("OMP_WAIT_POLICY", "PASSIVE"), ("GOMP_SPINCOUNT", "0"), ("KMP_BLOCKTIME", "0")):
    os.environ.setdefault(_name, _value)
