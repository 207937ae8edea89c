"""The demo of `make demo`: the whole product on one machine (walkthrough.py). Not part of the
driver; it drives the plugin only through its gRPC API and its public interfaces."""
