"""The ``posesvc`` command line."""
