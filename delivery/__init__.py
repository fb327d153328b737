"""Delivery tooling around the stack: the post-deploy smoke check and the local moto server."""
