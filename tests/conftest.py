import os

# keep tests on the CPU and single-threaded torch where possible: the machine has 2 cores
os.environ.setdefault("OMP_NUM_THREADS", "1")
