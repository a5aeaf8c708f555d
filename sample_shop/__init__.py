"""The sample shop: a simulated store's landed files, and `make run`, the nightly pipeline over them."""
