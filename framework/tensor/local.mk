# framework/tensor: build fragment (see the top-level Makefile.am)
