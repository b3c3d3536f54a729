# framework/nn: build fragment (see the top-level Makefile.am)
