"""Python-backend model sources that Triton ensembles chain with the networks."""
