# kernels/cuda: build fragment (see the top-level Makefile.am)
